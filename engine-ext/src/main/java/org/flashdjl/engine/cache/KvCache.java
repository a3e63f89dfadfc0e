package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

/**
 * One decoder layer's KV cache for a batch of streams that advance together (same length each step).
 *
 * <p>Per step the attention block rotates the new keys to their positions ({@link #nextPosition()} onward),
 * calls {@link #append}, and attends its queries over the returned {@link KvView}. The cache decides which keys
 * stay: everything ({@link ContiguousKvCache}), sinks plus a window (a {@code BlockKvCache} adapter), or pages.
 * By default keys are cached after RoPE, at their original stream positions, so attention over a view equals
 * attention of the full recomputation under the same mask; a cache may instead ask for {@link
 * #isInCachePositions() in-cache positions} (StreamingLLM).
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
     * Returns whether keys are cached un-rotated and rotated at their in-cache slot positions on every step
     * (StreamingLLM), instead of once at their stream positions. With in-cache positions the view's positions
     * ({@link KvView#getQueryStart()}, {@link KvSegment#getKeyStart()}) are slot indices.
     *
     * @return true for in-cache positions
     */
    default boolean isInCachePositions() {
        return false;
    }

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
