package org.flashdjl.ops.attention;

/**
 * Base of the backends built from DJL NDArray ops: they run on any device and dtype the engine supports, so
 * they are always available and accept every validated problem.
 */
public abstract class NdArrayBackend implements AttentionBackend {

    private final String name;
    private final String description;
    private final int rank;

    /**
     * Creates a backend.
     *
     * @param name the registry name
     * @param description the capability report's line
     * @param rank the registry rank ({@link org.flashdjl.ops.Backend#getRank()})
     */
    protected NdArrayBackend(String name, String description, int rank) {
        this.name = name;
        this.description = description;
        this.rank = rank;
    }

    /** {@inheritDoc} */
    @Override
    public final String getName() {
        return name;
    }

    /** {@inheritDoc} */
    @Override
    public final String getDescription() {
        return description;
    }

    /** {@inheritDoc} */
    @Override
    public final int getRank() {
        return rank;
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
