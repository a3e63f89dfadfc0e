package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;

/**
 * The result of an attention call: the output (shape and dtype of the query, value head dim) and, when asked
 * for, the log-sum-exp (fp32, natural log, the output's shape without its last axis: bhsd [batch, Hq, Lq], bshd
 * [batch, Lq, Hq], varlen [totalQ, Hq]).
 *
 * <p>Ownership (every FlashDJL operator, see {@link org.flashdjl.ops.OpScope}): both arrays belong to the caller
 * exactly as the result of a plain DJL op does: they live on the query's manager and, when the call runs inside
 * an {@link ai.djl.ndarray.NDScope}, they are that scope's, freed with it. Keep them past the scope the DJL way
 * ({@code NDScope.unregister} or {@code attach}); {@link #close()} frees both early and is never required.
 */
public final class AttentionOutput implements AutoCloseable {

    private final NDArray output; // like q: bhsd [B, Hq, Lq, Dv] / bshd [B, Lq, Hq, Dv] / varlen [totalQ, Hq, Dv]
    private final NDArray lse; // output shape without Dv, fp32: [B, Hq, Lq] / [B, Lq, Hq] / [totalQ, Hq]; or null

    /**
     * Wraps an output and its optional LSE.
     *
     * @param output the attention output
     * @param lse the LSE or null
     */
    public AttentionOutput(NDArray output, NDArray lse) {
        this.output = output;
        this.lse = lse;
    }

    /**
     * Returns the attention output.
     *
     * @return the output, in the query's layout and dtype
     */
    public NDArray getOutput() {
        return output;
    }

    /**
     * Returns the log-sum-exp, or null if the spec did not ask for it.
     *
     * @return the LSE or null
     */
    public NDArray getLse() {
        return lse;
    }

    /** Frees the output and the LSE now, instead of with their scope or manager. */
    @Override
    public void close() {
        output.close();
        if (lse != null) {
            lse.close();
        }
    }
}
