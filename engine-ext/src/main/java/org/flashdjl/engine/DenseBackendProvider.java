package org.flashdjl.engine;

import org.flashdjl.ops.attention.AttentionBackend;

/** Presents an operator-level {@link AttentionBackend} as a registry entry. */
final class DenseBackendProvider implements BackendProvider {

    private final AttentionBackend backend;

    DenseBackendProvider(AttentionBackend backend) {
        this.backend = backend;
    }

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return backend.getName();
    }

    /** {@inheritDoc} */
    @Override
    public BackendKind getKind() {
        return BackendKind.DENSE;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        switch (backend.getName()) {
            case "math":
                return "reference: the whole score matrix in fp32";
            case "online":
                return "flash-attention recurrence in NDArray ops (chunks merged by LSE)";
            case "flash":
                return "CUDA flash-attention kernels";
            default:
                return "dense attention (" + backend.getClass().getName() + ")";
        }
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        try {
            return backend.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            return "probe failed: " + e;
        }
    }
}
