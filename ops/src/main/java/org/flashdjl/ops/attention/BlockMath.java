package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The attention arithmetic on NDArrays, shared by the {@code math} and {@code online} backends: scores, softcap,
 * ALiBi, the {@link MaskRule} mask (hidden keys contribute nothing, whatever their bits), a softmax that keeps
 * empty rows at 0 / {@code -inf}, and the value product.
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
     * Which keys of a block each query sees ({@link MaskRule#visible}).
     *
     * @param manager the manager of the result
     * @param spec the spec
     * @param queryStart position of query row 0
     * @param qLen number of queries
     * @param keyStart index of key 0
     * @param kLen number of keys
     * @return boolean [qLen, kLen], or null when every key is visible to every query
     */
    static NDArray visible(NDManager manager, AttentionSpec spec, long queryStart, long qLen, long keyStart,
            long kLen) {
        return MaskRule.visible(manager, spec, queryStart, qLen, keyStart, kLen);
    }

    /**
     * Which keys of a block each query of each batch entry sees: the mask rule's visibility and the keys no
     * padding hides ({@link AttentionProblem#keyValid}).
     *
     * @param visible boolean [qLen, kLen] or null
     * @param keyValid boolean [B, 1, 1, kLen] or null
     * @return boolean [qLen, kLen], [B, 1, 1, kLen] or [B, 1, qLen, kLen] (each broadcasts over the scores), or
     *     null when every key is visible to every query
     */
    static NDArray visible(NDArray visible, NDArray keyValid) {
        return keyValid == null ? visible : visible == null ? keyValid : visible.logicalAnd(keyValid);
    }

    /**
     * Returns an LSE computed as bhsd [B, Hq, Lq] in the layout of its output ({@link AttentionProblem#lseShape}):
     * fp32 (also for float64 inputs), [B, Lq, Hq] contiguous for bshd.
     *
     * @param lse [B, Hq, Lq], fp32 or float64
     * @param layout the output's layout
     * @return the LSE, fp32, in the output's layout without its last axis
     */
    static NDArray lseFromBhsd(NDArray lse, QkvLayout layout) {
        NDArray fp32 = lse.toType(DataType.FLOAT32, false);
        return layout == QkvLayout.BHSD ? fp32 : fp32.transpose(0, 2, 1).duplicate();
    }

    /**
     * The scores of one block of queries against one block of keys: {@code (scale * q).k}, softcap, ALiBi, then
     * the mask: hidden scores are replaced by {@code -inf}, so a NaN or infinite hidden key leaves no trace. The
     * caller scales q once (qLen x D work, not qLen x kLen), so blockwise callers reuse it for every key block.
     *
     * <p>GQA without copying keys: query heads {@code g * G .. g * G + G - 1} share kv head {@code g}, so q is
     * viewed as [B, Hkv, G * qLen, D] and multiplied with k [B, Hkv, kLen, D] directly.
     *
     * @param spec the spec (softcap, ALiBi)
     * @param scaledQ fp32 {@code scale * q} [B, Hq, qLen, D]
     * @param k fp32 [B, Hkv, kLen, D]
     * @param visible the block's visibility [qLen, kLen] ({@link #visible}), or null when all visible
     * @param queryStart position of query row 0 ({@link MaskRule})
     * @param keyStart index of key 0
     * @return fp32 scores [B, Hq, qLen, kLen], a fresh array the caller may modify in place
     */
    static NDArray scores(AttentionSpec spec, NDArray scaledQ, NDArray k, NDArray visible, long queryStart,
            long keyStart) {
        NDArray q = scaledQ;
        long b = q.getShape().get(0);
        long hq = q.getShape().get(1);
        long qLen = q.getShape().get(2);
        long d = q.getShape().get(3);
        long hkv = k.getShape().get(1);
        long kLen = k.getShape().get(2);
        NDArray grouped = q.reshape(b, hkv, hq / hkv * qLen, d);
        NDArray scores = grouped.matMul(k.transpose(0, 1, 3, 2)).reshape(b, hq, qLen, kLen);
        if (spec.getSoftcap() > 0) {
            float cap = spec.getSoftcap();
            scores = scores.divi(cap).tanh().muli(cap);
        }
        NDArray alibi = MaskRule.alibi(q.getManager(), spec, queryStart, qLen, keyStart, kLen, 0, (int) hq);
        if (alibi != null) {
            scores.addi(alibi); // [Hq, qLen, kLen] broadcasts over batch
        }
        if (visible == null) {
            return scores;
        }
        Shape shape = scores.getShape();
        return NDArrays.where(visible.broadcast(shape), scores,
                q.getManager().full(shape, Float.NEGATIVE_INFINITY, scores.getDataType())); // where: no broadcasting
    }

    /**
     * The row maxima of scores, with {@code -inf} (a row that sees no key) clipped to {@code -Float.MAX_VALUE} so
     * that {@code exp(s - max)} stays 0 on such rows and their LSE {@code max + log(0)} stays {@code -inf}.
     *
     * @param rowValues values [..., n] or per-row maxima [..., 1]
     * @return finite row maxima [..., 1]
     */
    static NDArray finiteRowMax(NDArray rowValues) {
        int last = rowValues.getShape().dimension() - 1;
        return rowValues.max(new int[] {last}, true).clip(-Float.MAX_VALUE, Float.POSITIVE_INFINITY);
    }

    /**
     * The value product {@code p v} with GQA, in which a hidden key's value contributes exactly nothing.
     *
     * <p>{@code 0 * NaN} is NaN, so a plain product lets a NaN or infinite value that some rows of the block
     * hide poison those rows too. When the block hides keys and its values hold a non-finite entry, the product
     * runs on the values with those entries zeroed, and the output entries whose visible keys hold a non-finite
     * value become NaN (a visible non-finite value still poisons the rows that see it).
     *
     * @param p fp32 weights [B, Hq, qLen, kLen], 0 where hidden
     * @param v fp32 values [B, Hkv, kLen, Dv]
     * @param visible the block's visibility [qLen, kLen], or null when all visible
     * @return fp32 [B, Hq, qLen, Dv]
     */
    static NDArray weightedValues(NDArray p, NDArray v, NDArray visible) {
        if (visible != null) {
            NDArray bad = v.isNaN().logicalOr(v.isInfinite()); // [B, Hkv, kLen, Dv]
            if (bad.any().getBoolean()) {
                NDManager m = v.getManager();
                NDArray clean = NDArrays.where(bad, m.zeros(v.getShape(), v.getDataType()), v);
                NDArray seen = product(visible.broadcast(p.getShape()).toType(p.getDataType(), false),
                        bad.toType(p.getDataType(), false)); // [B, Hq, qLen, Dv]: visible non-finite entries
                NDArray out = product(p, clean);
                return NDArrays.where(seen.gt(0), m.full(out.getShape(), Float.NaN, out.getDataType()), out);
            }
        }
        return product(p, v);
    }

    // p [B, Hq, qLen, kLen] times v [B, Hkv, kLen, Dv], query heads grouped over their kv head.
    private static NDArray product(NDArray p, NDArray v) {
        Shape ps = p.getShape();
        long hkv = v.getShape().get(1);
        return p.reshape(ps.get(0), hkv, ps.get(1) / hkv * ps.get(2), ps.get(3)).matMul(v)
                .reshape(ps.get(0), ps.get(1), ps.get(2), v.getShape().get(3));
    }

    /**
     * Attention of one block of queries against one block of keys, normalised over that block, in fp32.
     *
     * @param spec the spec (mask, softcap, ALiBi)
     * @param scale the softmax scale
     * @param q fp32 [B, Hq, qLen, D]
     * @param k fp32 [B, Hkv, kLen, D]
     * @param v fp32 [B, Hkv, kLen, Dv]
     * @param queryStart position of query row 0 ({@link MaskRule})
     * @param keyStart index of key 0
     * @param keyValid boolean [B, 1, 1, kLen]: keys no padding hides, or null
     * @return fp32 output [B, Hq, qLen, Dv] and LSE [B, Hq, qLen]; rows with no visible key give 0 and -inf
     */
    static NDList attend(AttentionSpec spec, float scale, NDArray q, NDArray k, NDArray v, long queryStart,
            long keyStart, NDArray keyValid) {
        NDArray visible = visible(visible(q.getManager(), spec, queryStart, q.getShape().get(2), keyStart,
                k.getShape().get(2)), keyValid);
        NDArray scores = scores(spec, q.mul(scale), k, visible, queryStart, keyStart);
        NDArray max = finiteRowMax(scores);
        NDArray p = scores.subi(max).exp();
        NDArray sum = p.sum(new int[] {3}, true); // >= 1 on rows that see a key, 0 on empty rows
        NDArray out = weightedValues(p, v, visible).divi(sum.maximum(1f));
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
