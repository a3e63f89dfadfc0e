package org.flashdjl.ops.attention;

/**
 * A way to compute {@link AttentionSpec attention}: the service-provider interface behind {@link Attention}.
 *
 * <p>Backends are found by name through {@link AttentionBackends}; third parties add one by listing their class in
 * {@code META-INF/services/org.flashdjl.ops.attention.AttentionBackend}. A backend receives validated problems
 * only, and must give the results of the {@code math} backend within fp32 rounding.
 */
public interface AttentionBackend {

    /**
     * Returns the backend's name, e.g. {@code "math"}.
     *
     * @return the name used to select it
     */
    String getName();

    /**
     * Returns why this backend cannot run in this process (no GPU, kernels not built), or null if it can.
     *
     * @return the reason or null
     */
    String unavailableReason();

    /**
     * Returns why this backend cannot run this problem (device, dtype, head dim, option), or null if it can.
     *
     * @param problem a validated problem
     * @return the reason or null
     */
    String unsupportedReason(AttentionProblem problem);

    /**
     * Returns whether {@link #forward} takes varlen problems itself; otherwise {@link Attention} splits them into
     * one dense call per sequence.
     *
     * @return true if varlen is handled natively
     */
    default boolean supportsVarlen() {
        return false;
    }

    /**
     * Computes the attention of a problem with at least one query and one key.
     *
     * <p>The results belong to the caller like a DJL op's ({@link org.flashdjl.ops.OpScope}): on the query's
     * manager, in the caller's {@code NDScope}; every temporary is closed before returning.
     *
     * @param problem a validated problem that {@link #unsupportedReason} accepted
     * @return the output, with the LSE when the spec asks for it
     */
    AttentionOutput forward(AttentionProblem problem);
}
