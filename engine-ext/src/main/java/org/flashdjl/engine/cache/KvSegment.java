package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

/**
 * A run of cached keys and values whose stream positions are consecutive: key column {@code j} holds the token
 * at position {@code keyStart + j}. Attention over several segments computes each with these positions
 * ({@code AttentionProblem.Builder.optPositions}) and merges the states by LSE.
 */
public final class KvSegment {

    private final NDArray keys; // [B, Hkv, L, D]
    private final NDArray values; // [B, Hkv, L, Dv]
    private final long keyStart;

    /**
     * Creates a segment.
     *
     * @param keys keys [batch, kvHeads, length, headDim]
     * @param values values [batch, kvHeads, length, valueDim]
     * @param keyStart the stream position of column 0
     */
    public KvSegment(NDArray keys, NDArray values, long keyStart) {
        this.keys = keys;
        this.values = values;
        this.keyStart = keyStart;
    }

    /** @return keys [batch, kvHeads, length, headDim] */
    public NDArray getKeys() {
        return keys;
    }

    /** @return values [batch, kvHeads, length, valueDim] */
    public NDArray getValues() {
        return values;
    }

    /** @return the stream position of the segment's first key */
    public long getKeyStart() {
        return keyStart;
    }

    /** @return the number of keys */
    public long getLength() {
        return keys.getShape().get(2);
    }
}
