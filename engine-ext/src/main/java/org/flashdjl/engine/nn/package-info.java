/**
 * Attention as DJL {@code Block}s: {@link org.flashdjl.engine.nn.NativeAttentionBlock} and {@link
 * org.flashdjl.engine.nn.ContextParallelAttentionBlock} (q, k, v in, attention out, any backend), the drop-in
 * {@link org.flashdjl.engine.nn.FlashScaledDotProductAttentionBlock} for DJL's {@code
 * ScaledDotProductAttentionBlock} with its encoder {@link org.flashdjl.engine.nn.FlashTransformerEncoderBlock},
 * and the decoder attention of LLaMA-family models {@link org.flashdjl.engine.nn.DecoderAttentionBlock} (GQA,
 * RoPE, sliding window and sinks, over a {@link org.flashdjl.engine.cache.KvCache} or a {@link
 * org.flashdjl.engine.cache.SequenceKvStore}).
 */
package org.flashdjl.engine.nn;
