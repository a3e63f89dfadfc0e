package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

/**
 * One decoder layer's KV cache for a batch of streams that advance together (same length each step).
 *
 * <p>Per step the attention block rotates the new keys to their positions ({@link #nextPosition()} onward),
 * calls {@link #append}, and attends its queries over the returned {@link KvView}. The cache decides which keys
 * stay: everything ({@link ContiguousKvCache}), sinks plus a window (a {@code BlockKVCache} adapter), or pages.
 * Keys are cached after RoPE, at their original stream positions, so attention over a view equals attention of
 * the full recomputation under the same mask.
 */
public interface KvCache extends AutoCloseable {

    /**
     * Returns the number of tokens appended so far: the stream position of the next token.
     *
     * @return the stream length
     */
    long nextPosition();

    /**
     * Appends the keys and values of {@code T} new tokens and returns what their queries attend to.
     *
     * @param keys new keys [batch, kvHeads, T, headDim], already rotated
     * @param values new values [batch, kvHeads, T, valueDim]
     * @return the segments to attend (valid until the next append) and the first query's position
     */
    KvView append(NDArray keys, NDArray values);

    /**
     * Returns the bytes of key and value storage the cache holds (allocated capacity, not just the used part).
     *
     * @return the storage size in bytes
     */
    long memoryBytes();

    /**
     * Returns the number of tokens the cache currently keeps (what attention reads).
     *
     * @return the cached length
     */
    long cachedLength();

    /** Frees the cache's storage. */
    @Override
    void close();
}
