package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.kvcache.BlockKvCache;
import org.flashdjl.ops.Checks;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link KvCache} over {@link BlockKvCache} (StreamingLLM: {@code sinks} first tokens kept forever plus the
 * {@code window} most recent ones; fixed memory however long the stream). Tokens go into the block cache one
 * per chunk ({@code chunkSize = 1}), so decode steps and prompts of any length fit.
 *
 * <p>Decode steps (one token) attend over the block cache's contents after the update: sinks and window, as
 * segments of consecutive {@link BlockKvCache#tokenPositions() positions}. A chunk of several tokens (the
 * prompt) attends over a copy of the contents before the update plus the chunk itself, so its first query
 * still sees the {@code window - 1} keys before it; then its tokens are pushed.
 *
 * <p>Positions for RoPE: {@link Positions#ORIGINAL} (default) caches rotated keys at their stream positions,
 * and generation equals the full computation under the mask (causal, window, sinks); {@link
 * Positions#IN_CACHE} (StreamingLLM) caches un-rotated keys that the attention block rotates at their slot
 * indices every step, so distances stay below {@code sinks + window} however long the stream.
 */
public final class StreamingKvCache implements KvCache {

    /** Which positions RoPE uses. */
    public enum Positions {
        /** Stream positions: exact against the masked full computation. */
        ORIGINAL,
        /** Slot indices in the cache (StreamingLLM). */
        IN_CACHE
    }

    private final int window;
    private final int sinks;
    private final Positions positions;
    private BlockKvCache cache;
    private long length;

    /**
     * Creates the cache and its block cache (buffers allocated once, here, and kept out of any open
     * {@code NDScope}).
     *
     * @param manager the parent manager
     * @param batch the batch size B
     * @param kvHeads Hkv
     * @param headDim D of keys and values
     * @param dataType the dtype of keys and values (float16/32/64)
     * @param window the most recent tokens kept (each query's window, itself included), {@code >= 1}
     * @param sinks the first tokens kept forever
     * @param positions which positions RoPE uses
     */
    public StreamingKvCache(NDManager manager, int batch, int kvHeads, int headDim, DataType dataType, int window,
            int sinks, Positions positions) {
        Checks.checkAtLeast("window", window, 1, "the most recent tokens kept");
        Checks.checkAtLeast("sinks", sinks, 0, "0 = no sinks");
        this.window = window;
        this.sinks = sinks;
        this.positions = positions;
        Shape shape = new Shape(batch, kvHeads, -1, headDim);
        this.cache = BlockKvCache.builder().setKeyShape(shape).setValueShape(shape).setSeqDim(2).setChunkSize(1)
                .setWindowSize(window).optSinkSize(sinks).optDataType(dataType).build(manager);
    }

    /** @return the most recent tokens kept */
    public int getWindow() {
        return window;
    }

    /** @return the sink tokens kept */
    public int getSinks() {
        return sinks;
    }

    /** @return which positions RoPE uses */
    public Positions getPositions() {
        return positions;
    }

    /** @return the underlying block cache (null once closed) */
    public BlockKvCache getBlockCache() {
        return cache;
    }

    /** {@inheritDoc} */
    @Override
    public boolean isInCachePositions() {
        return positions == Positions.IN_CACHE;
    }

    /** {@inheritDoc} */
    @Override
    public long nextPosition() {
        return length;
    }

    /** {@inheritDoc} */
    @Override
    public long cachedLength() {
        return cache == null ? 0 : cache.cachedLength();
    }

    /** {@inheritDoc} */
    @Override
    public KvView append(NDArray keys, NDArray values) {
        Checks.checkRank("keys", keys, 4, "[batch, kvHeads, T, headDim]");
        Checks.checkRank("values", values, 4, "[batch, kvHeads, T, valueDim]");
        long t = keys.getShape().get(2);
        long p0 = length;
        List<KvSegment> segments = new ArrayList<>();
        if (t == 1) {
            push(keys, values, 0);
            addSegments(segments, cache.cachedK(), cache.cachedV(), slotsOrPositions());
            return new KvView(segments, queryPosition(p0, cache.cachedLength() - 1));
        }
        long before = cache.cachedLength();
        long querySlot = before;
        if (before > 0) {
            // keep the contents the chunk's early queries need; pushing the chunk may evict them
            addSegments(segments, cache.cachedK().duplicate(), cache.cachedV().duplicate(), slotsOrPositions());
        }
        if (positions == Positions.IN_CACHE) {
            // one run of slots: the old contents, then the chunk
            segments.add(new KvSegment(keys, values, querySlot));
        } else {
            segments.add(new KvSegment(keys, values, p0));
        }
        for (long i = 0; i < t; i++) {
            push(keys, values, i);
        }
        return new KvView(segments, queryPosition(p0, querySlot));
    }

    private long queryPosition(long stream, long slot) {
        return positions == Positions.IN_CACHE ? slot : stream;
    }

    private long[] slotsOrPositions() {
        if (positions == Positions.IN_CACHE) {
            long[] s = new long[cache.cachedLength()];
            for (int i = 0; i < s.length; i++) {
                s[i] = i;
            }
            return s;
        }
        return cache.tokenPositions();
    }

    private void push(NDArray keys, NDArray values, long i) {
        NDIndex one = new NDIndex(":, :, {}:{}", i, i + 1);
        cache.beforeUpdate(length);
        cache.update(keys.get(one), values.get(one));
        cache.afterUpdate(length);
        length++;
    }

    // Splits cache contents into runs of consecutive positions.
    private static void addSegments(List<KvSegment> out, NDArray k, NDArray v, long[] pos) {
        int start = 0;
        for (int i = 1; i <= pos.length; i++) {
            if (i == pos.length || pos[i] != pos[i - 1] + 1) {
                NDIndex run = new NDIndex(":, :, {}:{}", start, i);
                out.add(new KvSegment(k.get(run), v.get(run), pos[start]));
                start = i;
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public long memoryBytes() {
        if (cache == null) {
            return 0;
        }
        return ContiguousKvCache.bytes(cache.keyBuffer()) + ContiguousKvCache.bytes(cache.valueBuffer());
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        if (cache != null) {
            cache.close();
            cache = null;
        }
    }
}
