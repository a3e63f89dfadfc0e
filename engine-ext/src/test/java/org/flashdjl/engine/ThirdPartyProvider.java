package org.flashdjl.engine;

/** A third-party non-dense registry entry, registered by this module's test service file. */
public final class ThirdPartyProvider implements BackendProvider {

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return "vendor-paged";
    }

    /** {@inheritDoc} */
    @Override
    public BackendKind getKind() {
        return BackendKind.PAGED;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "a vendor's paged kernels";
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return "needs the vendor's driver";
    }
}
