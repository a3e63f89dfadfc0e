/**
 * FlashDJL operators over DJL {@link ai.djl.ndarray.NDArray}s: attention ({@code attention}), state merging
 * and shared-prefix attention ({@code cascade}), paged KV attention ({@code paged}), the CUDA runtime and
 * kernels ({@code cuda}) and context parallelism ({@code parallel}).
 *
 * <p>Shapes follow one convention everywhere: {@code bhsd} = [batch, heads, seq, dim], {@code bshd} =
 * [batch, seq, heads, dim]; {@code Lq}, {@code Lk} are the query and key lengths.
 */
package org.flashdjl.ops;
