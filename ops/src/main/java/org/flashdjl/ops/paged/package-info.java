/**
 * Paged attention: attention of each sequence's new query tokens over its K/V stored in fixed-size pages of a
 * shared pool ({@link org.flashdjl.ops.paged.PageTable}: block-table or CSR form), for decode and append / chunked
 * prefill ({@link org.flashdjl.ops.paged.PagedAttention}, {@link org.flashdjl.ops.paged.PagedPlan}), computed by a
 * named {@link org.flashdjl.ops.paged.PagedAttentionBackend}: {@code gather} on NDArrays, and {@code cuda}
 * ({@code org.flashdjl.ops.cuda.CudaPagedAttentionBackend}, decode plans on a GPU) registered through
 * {@link java.util.ServiceLoader}. The page pools are usually those of
 * {@code org.flashdjl.kvcache.paged.PagedKvCache}.
 */
package org.flashdjl.ops.paged;
