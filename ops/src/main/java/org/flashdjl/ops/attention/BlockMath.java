package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;

/**
 * The attention arithmetic on NDArrays, shared by the {@code math} and {@code online} backends: scores, softcap,
 * the {@link MaskRule} bias, a softmax that keeps empty rows at 0 / {@code -inf}, and the value product.
 */
final class BlockMath {

    private BlockMath() {}

    /**
     * Returns a bhsd view of a rank-4 tensor in the given layout.
     *
     * @param x [B, Lq, H, D] (bshd) or [B, H, Lq, D] (bhsd)
     * @param layout the layout of x
     * @return x as [B, H, L, D]
     */
    static NDArray toBhsd(NDArray x, QkvLayout layout) {
        return layout == QkvLayout.BHSD ? x : x.transpose(0, 2, 1, 3);
    }

    /**
     * Returns a bhsd tensor in the given layout, contiguous.
     *
     * @param x [B, H, L, D]
     * @param layout the wanted layout
     * @return x in that layout
     */
    static NDArray fromBhsd(NDArray x, QkvLayout layout) {
        return layout == QkvLayout.BHSD ? x : x.transpose(0, 2, 1, 3).duplicate();
    }

    /**
     * Attention of one block of queries against one block of keys, in fp32.
     *
     * <p>GQA without copying keys: query heads {@code g * G .. g * G + G - 1} share kv head {@code g}, so q is
     * viewed as [B, Hkv, G * qLen, D] and multiplied with k [B, Hkv, kLen, D] directly.
     *
     * @param spec the spec (mask, softcap, ALiBi)
     * @param scale the softmax scale
     * @param q fp32 [B, Hq, qLen, D]
     * @param k fp32 [B, Hkv, kLen, D]
     * @param v fp32 [B, Hkv, kLen, Dv]
     * @param queryStart position of query row 0 ({@link MaskRule})
     * @param keyStart index of key 0
     * @return fp32 output [B, Hq, qLen, Dv] and LSE [B, Hq, qLen]; rows with no visible key give 0 and -inf
     */
    static NDList attend(AttentionSpec spec, float scale, NDArray q, NDArray k, NDArray v, long queryStart,
            long keyStart) {
        long b = q.getShape().get(0);
        long hq = q.getShape().get(1);
        long qLen = q.getShape().get(2);
        long d = q.getShape().get(3);
        long hkv = k.getShape().get(1);
        long kLen = k.getShape().get(2);
        long dv = v.getShape().get(3);
        long group = hq / hkv;

        NDArray grouped = q.reshape(b, hkv, group * qLen, d);
        NDArray scores = grouped.matMul(k.transpose(0, 1, 3, 2)).reshape(b, hq, qLen, kLen).mul(scale);
        if (spec.getSoftcap() > 0) {
            float cap = spec.getSoftcap();
            scores = scores.div(cap).tanh().mul(cap);
        }
        NDArray bias = MaskRule.bias(q.getManager(), spec, queryStart, qLen, keyStart, kLen, 0, (int) hq);
        if (bias != null) {
            scores = scores.add(bias); // bias [1 or Hq, qLen, kLen] broadcasts over batch
        }
        // A row of -inf has max -inf: clipping it to -MAX keeps exp() at 0 and the LSE at -inf.
        NDArray max = scores.max(new int[] {3}, true).clip(-Float.MAX_VALUE, Float.POSITIVE_INFINITY);
        NDArray p = scores.sub(max).exp();
        NDArray sum = p.sum(new int[] {3}, true); // >= 1 on rows that see a key, 0 on empty rows
        NDArray out = p.reshape(b, hkv, group * qLen, kLen).matMul(v).reshape(b, hq, qLen, dv);
        out = out.div(sum.maximum(1f));
        NDArray lse = max.add(sum.log()).squeeze(3);
        return new NDList(out, lse);
    }

    /**
     * Converts to the accumulation type: fp32, or float64 for float64 inputs (a reference run).
     *
     * @param x a float array
     * @return x as fp32 (or unchanged float64)
     */
    static NDArray fp32(NDArray x) {
        DataType type = x.getDataType();
        return type == DataType.FLOAT32 || type == DataType.FLOAT64 ? x : x.toType(DataType.FLOAT32, false);
    }
}
