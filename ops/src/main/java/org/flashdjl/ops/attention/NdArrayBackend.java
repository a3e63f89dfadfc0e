package org.flashdjl.ops.attention;

/**
 * Base of the backends built from DJL NDArray ops: they run on any device and dtype the engine supports, so
 * they are always available and accept every validated problem.
 */
public abstract class NdArrayBackend implements AttentionBackend {

    private final String name;

    /**
     * Creates a backend with a name.
     *
     * @param name the registry name
     */
    protected NdArrayBackend(String name) {
        this.name = name;
    }

    /** {@inheritDoc} */
    @Override
    public final String getName() {
        return name;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(AttentionProblem problem) {
        return null;
    }
}
