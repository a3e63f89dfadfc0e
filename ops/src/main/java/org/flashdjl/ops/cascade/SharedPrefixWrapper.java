package org.flashdjl.ops.cascade;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PagedPlan;

/**
 * What the shared-prefix wrappers ({@link SharedPrefixBatchDecode}, {@link SharedPrefixBatchPrefill}) have in
 * common: the per-layer {@link #forward}, the step's plan and its end. Subclasses add their {@code beginForward}
 * (FlashInfer's {@code begin_forward}) for decode (one query per request) or prefill (query rows by
 * {@code qoIndptr}).
 */
public abstract class SharedPrefixWrapper implements AutoCloseable {

    /** The cascade both wrappers run: prefix part, paged suffix part, merge. */
    final SharedPrefixCascade cascade;

    SharedPrefixWrapper(String pagedBackend, String denseBackend) {
        this.cascade = new SharedPrefixCascade(pagedBackend, denseBackend);
    }

    /**
     * Computes one layer: attention of every query over the shared prefix followed by its request's paged suffix.
     *
     * @param q queries: decode [B, Hq, D], prefill packed [totalQ, Hq, D]
     * @param kShared shared prefix keys [P, Hkv, D]
     * @param vShared shared prefix values [P, Hkv, Dv]
     * @param kPages suffix key pages [numPages, pageSize, Hkv, D]
     * @param vPages suffix value pages [numPages, pageSize, Hkv, Dv]
     * @param spec what to compute (positions global over prefix + suffix; layout ignored)
     * @return output shaped like q with Dv, and, when the spec asks, LSE (q's shape without D) fp32 natural log
     * @throws IllegalStateException before {@code beginForward} or after {@link #endForward}
     */
    public AttentionOutput forward(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
            AttentionSpec spec) {
        return cascade.forward(q, kShared, vShared, kPages, vPages, spec);
    }

    /** Frees the plan (FlashInfer's {@code end_forward}); a no-op when none is active. */
    public void endForward() {
        cascade.end();
    }

    /**
     * Returns the NDArray cascade's plan of the active step, the same object for every {@link #forward} of a step
     * (built on first use when a device backend runs the step).
     *
     * @return the plan
     * @throws IllegalStateException when no plan is active
     */
    public PagedPlan getPlan() {
        return cascade.plan();
    }

    /**
     * Returns the device backend ({@link SharedPrefixBackend}) that runs the active step, or null when the NDArray
     * cascade runs it (no step, no backend for it, or backends other than {@code auto}). Layer calls that backend
     * refuses still run on the NDArray cascade.
     *
     * @return e.g. {@code "cuda"}, or null
     */
    public String getDeviceBackend() {
        return cascade.deviceBackend();
    }

    /**
     * Returns whether a plan is active.
     *
     * @return true between {@code beginForward} and {@link #endForward}
     */
    public boolean isActive() {
        return cascade.isActive();
    }

    /** Same as {@link #endForward()}. */
    @Override
    public void close() {
        endForward();
    }
}
