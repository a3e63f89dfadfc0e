package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

/**
 * A {@link BatchKvView} of copies: the keys and values of a step's sequences packed one after another for varlen
 * attention: sequence {@code i}
 * holds rows {@code cuSeqlensK[i] .. cuSeqlensK[i + 1]} (positions 0 onward), its new tokens last.
 */
public final class PackedKv implements BatchKvView {

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

    /** {@inheritDoc} */
    @Override
    public AttentionOutput attend(NDArray q, int[] queryCounts, AttentionSpec spec, String backend) {
        int[] cuQ = new int[queryCounts.length + 1];
        for (int i = 0; i < queryCounts.length; i++) {
            cuQ[i + 1] = cuQ[i] + queryCounts[i];
        }
        NDManager m = q.getManager();
        try (NDArray cuQArray = m.create(cuQ);
                NDArray cuKArray = m.create(cuSeqlensK)) {
            return Attention.forwardVarlen(q, keys, values, cuQArray, cuKArray, spec, backend);
        }
    }
}
