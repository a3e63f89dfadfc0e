package org.flashdjl.ops.cascade;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttentionBackends;

/**
 * Shared-prefix batch prefill / append (FlashInfer's {@code BatchPrefillWithSharedPrefixPagedKvCacheWrapper}): each
 * of B requests has {@code Lq_b} new query tokens (packed by {@code qoIndptr}; the last tokens of its sequence,
 * already appended to its suffix) and a key sequence made of one contiguous prefix shared by all requests
 * ({@code kShared} [P, Hkv, D]) followed by its own paged suffix of {@code S_b} tokens. The result equals paged
 * prefill over the concatenated prefix + suffix with the same {@link AttentionSpec} (positions global: query i of
 * request b sits at {@code P + S_b - Lq_b + i}, so a causal spec is bottom-right aligned over the whole sequence);
 * it is computed as the prefix part for all queries at once, the paged suffix part, and their
 * {@link MergeState#mergeState merge} (natural-log LSE).
 *
 * <pre>{@code
 * try (SharedPrefixBatchPrefill wrapper = new SharedPrefixBatchPrefill()) {
 *     wrapper.beginForward(qoIndptr, indptr, indices, lastPageLen, numQoHeads, numKvHeads, headDim,
 *             pageSize);                                                          // once per step
 *     for (int layer = 0; layer < layers; layer++) {
 *         AttentionOutput o = wrapper.forward(q[layer], kShared[layer], vShared[layer],
 *                 cache.getKeyPages(layer), cache.getValuePages(layer), spec);     // o: [totalQ, Hq, D]
 *     }
 *     wrapper.endForward();
 * }
 * }</pre>
 *
 * <p>The plan (the suffix page table's gather indices or a kernel's device tables) is built once in
 * {@link #beginForward} and reused by every {@link #forward} without new index data; {@link #endForward} frees it.
 * {@code forward} outside {@code beginForward .. endForward} throws {@link IllegalStateException}. Not thread-safe:
 * one wrapper per scheduler thread.
 */
public final class SharedPrefixBatchPrefill extends SharedPrefixWrapper {

    /** Creates a wrapper with the {@code auto} paged and dense attention backends. */
    public SharedPrefixBatchPrefill() {
        this(PagedAttentionBackends.AUTO, AttentionBackends.AUTO);
    }

    /**
     * Creates a wrapper with named backends.
     *
     * @param pagedBackend the suffix backend, a name from {@link PagedAttentionBackends#names()}
     * @param denseBackend the prefix backend, a name from {@link AttentionBackends#names()}
     */
    public SharedPrefixBatchPrefill(String pagedBackend, String denseBackend) {
        super(pagedBackend, denseBackend);
    }

    /**
     * Builds the step's plan from the suffixes' CSR page table (FlashInfer's {@code begin_forward}).
     *
     * @param qoIndptr int32 [B + 1] query row offsets
     * @param indptr int32 [B + 1] suffix page offsets
     * @param indices int32 [indptr[B]] suffix pages
     * @param lastPageLen int32 [B] tokens in each suffix's last page (1..pageSize; 0 for an empty suffix)
     * @param numQoHeads query heads Hq
     * @param numKvHeads key/value heads Hkv (Hq % Hkv == 0)
     * @param headDim head dim D
     * @param pageSize tokens per page
     */
    public void beginForward(NDArray qoIndptr, NDArray indptr, NDArray indices, NDArray lastPageLen,
            int numQoHeads, int numKvHeads, int headDim, int pageSize) {
        PageTable table = PageTable.fromCsr(pageSize, indptr, indices, lastPageLen, -1);
        if (qoIndptr.getDataType() != DataType.INT32) {
            throw new IllegalArgumentException("qoIndptr must be int32, got " + qoIndptr.getDataType());
        }
        cascade.begin(table, qoIndptr.toIntArray(), numQoHeads, numKvHeads, headDim, indices.getDevice());
    }

    /**
     * Builds the step's plan from a page table of the suffixes.
     *
     * @param qoIndptr [B + 1] query row offsets
     * @param table the B suffixes' pages
     * @param numQoHeads query heads Hq
     * @param numKvHeads key/value heads Hkv
     * @param headDim head dim D
     * @param device the device of queries and pools
     */
    public void beginForward(int[] qoIndptr, PageTable table, int numQoHeads, int numKvHeads, int headDim,
            Device device) {
        cascade.begin(table, qoIndptr, numQoHeads, numKvHeads, headDim, device);
    }
}
