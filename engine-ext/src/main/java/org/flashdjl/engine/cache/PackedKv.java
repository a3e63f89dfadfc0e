package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

/**
 * The keys and values of a step's sequences packed one after another for varlen attention: sequence {@code i}
 * holds rows {@code cuSeqlensK[i] .. cuSeqlensK[i + 1]} (positions 0 onward), its new tokens last.
 */
public final class PackedKv {

    private final NDArray keys; // [totalK, Hkv, D]
    private final NDArray values; // [totalK, Hkv, Dv]
    private final int[] cuSeqlensK; // [S + 1]

    /**
     * Creates a packed view.
     *
     * @param keys packed keys [totalK, kvHeads, headDim]
     * @param values packed values [totalK, kvHeads, valueDim]
     * @param cuSeqlensK offsets [sequences + 1]
     */
    public PackedKv(NDArray keys, NDArray values, int[] cuSeqlensK) {
        this.keys = keys;
        this.values = values;
        this.cuSeqlensK = cuSeqlensK.clone();
    }

    /** @return packed keys [totalK, kvHeads, headDim] */
    public NDArray getKeys() {
        return keys;
    }

    /** @return packed values [totalK, kvHeads, valueDim] */
    public NDArray getValues() {
        return values;
    }

    /** @return a copy of the key offsets [sequences + 1] */
    public int[] getCuSeqlensK() {
        return cuSeqlensK.clone();
    }
}
