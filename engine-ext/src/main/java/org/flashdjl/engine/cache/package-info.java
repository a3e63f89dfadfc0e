/**
 * The KV cache abstraction the decoder attention block reads and writes: {@link
 * org.flashdjl.engine.cache.KvCache} (one layer, a batch of streams advancing together) with the contiguous
 * {@link org.flashdjl.engine.cache.ContiguousKvCache}, and {@link org.flashdjl.engine.cache.SequenceKvStore}
 * (many sequences of different lengths, continuous batching) with {@link
 * org.flashdjl.engine.cache.ContiguousSequenceKvStore}. Adapters for {@code org.flashdjl.kvcache.BlockKvCache}
 * (streaming sink + window) and {@code PagedKvCache} implement the same interfaces.
 */
package org.flashdjl.engine.cache;
