package org.flashdjl.ops.attention;

import org.flashdjl.ops.Backend;

/**
 * A way to compute {@link AttentionSpec attention}: the service-provider interface behind {@link Attention}.
 *
 * <p>Backends are found by name through {@link AttentionBackends} (a {@link Backend} registry); third parties add
 * one by listing their class in {@code META-INF/services/org.flashdjl.ops.attention.AttentionBackend}, and give it
 * a {@link Backend#getRank() rank} above {@code online}'s (10) for {@code auto} to pick it. A backend receives
 * validated problems only, and must give the results of the {@code math} backend within fp32 rounding.
 */
public interface AttentionBackend extends Backend<AttentionProblem> {

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
