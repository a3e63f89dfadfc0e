/**
 * The paged KV cache: per-layer K and V page pools allocated once, a page allocator with a free list and
 * reference counts, sequences that grow page by page, prefix sharing by fork with copy-on-write, and page tables
 * exported in block-table and CSR form for {@link org.flashdjl.ops.paged.PagedAttention} and the cascade
 * wrappers of {@code org.flashdjl.ops.cascade}. See {@link org.flashdjl.kvcache.paged.PagedKvCache}.
 */
package org.flashdjl.kvcache.paged;
