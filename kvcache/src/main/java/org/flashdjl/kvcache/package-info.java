/**
 * KV caches for DJL {@link ai.djl.ndarray.NDArray}s.
 *
 * <ul>
 *   <li>{@link org.flashdjl.kvcache.BlockKvCache}: a streaming cache of fixed size along the
 *       sequence dimension, laid out as [sink tokens | local window], fed chunk by chunk (seed
 *       000). Its buffers are allocated once and never reallocated, so kernels and captured graphs
 *       can keep their addresses.
 * </ul>
 */
package org.flashdjl.kvcache;
