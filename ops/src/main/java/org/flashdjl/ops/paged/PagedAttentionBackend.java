package org.flashdjl.ops.paged;

import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.Backend;

import org.flashdjl.ops.attention.AttentionOutput;

/**
 * A way to compute paged attention: the service-provider interface behind {@link PagedPlan} and
 * {@link PagedAttention}, the paged counterpart of {@link org.flashdjl.ops.attention.AttentionBackend}.
 *
 * <p>The protocol is FlashInfer's plan / run: once per step {@link #prepare} turns a {@link PagedPlan} (page table,
 * query offsets, head counts) into the backend's auxiliary data (a {@link PlanData}: gather indices on the CPU;
 * device page tables and a split-k work partition for a CUDA kernel); then {@link #forward} runs once per layer
 * with that layer's queries and page pools, reusing the plan data without building new index data.
 *
 * <p>Backends are found by name through {@link PagedAttentionBackends}; a CUDA backend registers itself by
 * listing its class in {@code META-INF/services/org.flashdjl.ops.paged.PagedAttentionBackend} under the name
 * {@code cuda} with a rank above {@code gather}'s, and {@code auto} then picks it for the plans it supports. A backend must give the results of the
 * {@code gather} backend within fp32 rounding (the contiguous {@link org.flashdjl.ops.attention.Attention} on each
 * sequence's gathered keys, bottom-right aligned).
 */
public interface PagedAttentionBackend extends Backend<PagedPlan> {

    /**
     * Returns why this backend cannot run a plan (device, page size, head dim, head ratio), or null if it can.
     * A kernel with a fixed set of page sizes names them here, e.g. {@code "page size 12 not built; allowed: 1, 8,
     * 16, 32, 64, 128, 256"}.
     *
     * @param plan a validated plan
     * @return the reason or null
     */
    @Override
    String unsupportedReason(PagedPlan plan);

    /**
     * Returns why this backend cannot run one call of a plan (dtype, mask options), or null if it can.
     *
     * @param problem a validated call
     * @return the reason or null
     */
    String unsupportedReason(PagedAttentionProblem problem);

    /**
     * Builds the auxiliary data of a plan, once per step.
     *
     * @param plan a validated plan that {@link #unsupportedReason(PagedPlan)} accepted
     * @param manager the manager that owns the plan data's arrays until the plan closes
     * @return the plan data that every {@link #forward} of the plan receives
     */
    PlanData prepare(PagedPlan plan, NDManager manager);

    /**
     * Computes one call: output [totalQ, Hq, Dv] in the query's dtype and, when the spec asks, the LSE
     * [totalQ, Hq] fp32 natural log (query rows that see no key: output 0, LSE {@code -inf}).
     *
     * @param problem a validated call whose {@link PagedAttentionProblem#getPlanData()} this backend prepared
     * @return the output and optional LSE, the caller's like a DJL op's result ({@link org.flashdjl.ops.OpScope})
     */
    AttentionOutput forward(PagedAttentionProblem problem);

    /** A backend's per-plan auxiliary data; closed with the plan. */
    interface PlanData extends AutoCloseable {

        /** Releases the auxiliary data. */
        @Override
        void close();
    }
}
