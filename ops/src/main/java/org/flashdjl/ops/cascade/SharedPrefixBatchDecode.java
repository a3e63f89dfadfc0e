package org.flashdjl.ops.cascade;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttentionBackends;

/**
 * Shared-prefix batch decode (FlashInfer's {@code BatchDecodeWithSharedPrefixPagedKvCacheWrapper}): each of B
 * requests has one query token and a key sequence made of one contiguous prefix shared by all requests
 * ({@code kShared} [P, Hkv, D]) followed by its own paged suffix. The result equals paged decode over the
 * concatenated prefix + suffix with the same {@link AttentionSpec} (positions global: the query of request b sits
 * at {@code P + S_b - 1}); it is computed as the prefix part for all queries at once, the paged suffix part, and
 * their {@link MergeState#mergeState merge} (natural-log LSE).
 *
 * <pre>{@code
 * try (SharedPrefixBatchDecode wrapper = new SharedPrefixBatchDecode()) {
 *     wrapper.beginForward(indptr, indices, lastPageLen, numQoHeads, numKvHeads, headDim, pageSize); // per step
 *     for (int layer = 0; layer < layers; layer++) {
 *         AttentionOutput o = wrapper.forward(q[layer], kShared[layer], vShared[layer],
 *                 cache.getKeyPages(layer), cache.getValuePages(layer), spec);     // o: [B, Hq, D]
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
public final class SharedPrefixBatchDecode extends SharedPrefixWrapper {

    /** Creates a wrapper with the {@code auto} paged and dense attention backends. */
    public SharedPrefixBatchDecode() {
        this(PagedAttentionBackends.AUTO, AttentionBackends.AUTO);
    }

    /**
     * Creates a wrapper with named backends.
     *
     * @param pagedBackend the suffix backend, a name from {@link PagedAttentionBackends#names()}
     * @param denseBackend the prefix backend, a name from {@link AttentionBackends#names()}
     */
    public SharedPrefixBatchDecode(String pagedBackend, String denseBackend) {
        super(pagedBackend, denseBackend);
    }

    /**
     * Builds the step's plan from the suffixes' CSR page table (FlashInfer's {@code begin_forward}).
     *
     * @param indptr int32 [B + 1] suffix page offsets
     * @param indices int32 [indptr[B]] suffix pages
     * @param lastPageLen int32 [B] tokens in each suffix's last page (1..pageSize; 0 for an empty suffix)
     * @param numQoHeads query heads Hq
     * @param numKvHeads key/value heads Hkv (Hq % Hkv == 0)
     * @param headDim head dim D
     * @param pageSize tokens per page
     */
    public void beginForward(NDArray indptr, NDArray indices, NDArray lastPageLen, int numQoHeads, int numKvHeads,
            int headDim, int pageSize) {
        PageTable table = PageTable.fromCsr(pageSize, indptr, indices, lastPageLen, -1);
        cascade.begin(table, null, numQoHeads, numKvHeads, headDim, indices.getDevice());
    }

    /**
     * Builds the step's plan from a page table of the suffixes.
     *
     * @param table the B suffixes' pages
     * @param numQoHeads query heads Hq
     * @param numKvHeads key/value heads Hkv
     * @param headDim head dim D
     * @param device the device of queries and pools
     */
    public void beginForward(PageTable table, int numQoHeads, int numKvHeads, int headDim, Device device) {
        cascade.begin(table, null, numQoHeads, numKvHeads, headDim, device);
    }
}
