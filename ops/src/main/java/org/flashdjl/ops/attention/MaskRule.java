package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The one visibility and position-bias rule of every attention backend.
 *
 * <p>Positions: query row {@code i} of a block sits at position {@code queryStart + i} and key column {@code j}
 * is key {@code keyStart + j} of the full sequence. For a plain call {@code queryStart = Lk - Lq} and
 * {@code keyStart = 0} (bottom-right alignment); blockwise algorithms (online, ring, cascade, paged) pass the
 * offsets of their block. With {@code rel = key - pos}:
 *
 * <ul>
 *   <li>causal: visible iff {@code rel <= 0};
 *   <li>window bounds (left, right), -1 = unbounded: {@code -left <= rel <= right};
 *   <li>sinks: keys {@code < sinkTokens} ignore the window's left bound (never the causal or right bound);
 *   <li>ALiBi: score {@code += -slope[h] * |rel|}, added after softcap.
 * </ul>
 *
 * <p>A key the rule hides contributes exactly nothing, whatever its bits: its score is replaced by {@code -inf}
 * (never added to, so a NaN or infinite key cannot leak through), and its value is never multiplied into an output
 * (an uninitialised cache slot or a poisoned page may hold NaN or Inf). A NaN key or a non-finite value that a
 * query does see makes that query's output non-finite. docs/SEMANTICS.md states the whole contract.
 */
public final class MaskRule {

    /** How much of a block of scores the rule keeps. */
    public enum Coverage {
        /** Every key of the block is masked for every query: the block can be skipped. */
        NONE,
        /** Some keys are masked. */
        PARTIAL,
        /** No key is masked. */
        FULL
    }

    private MaskRule() {}

    /**
     * Returns whether key {@code key} is visible from the query at position {@code pos}.
     *
     * @param spec the attention spec
     * @param pos the query position
     * @param key the key index
     * @return true if visible
     */
    public static boolean isVisible(AttentionSpec spec, long pos, long key) {
        long rel = key - pos;
        if (spec.isCausal() && rel > 0) {
            return false;
        }
        if (spec.getWindowRight() >= 0 && rel > spec.getWindowRight()) {
            return false;
        }
        return spec.getWindowLeft() < 0 || rel >= -spec.getWindowLeft() || key < spec.getSinkTokens();
    }

    /**
     * Classifies a block of queries at positions {@code [queryStart, queryStart + qLen)} against keys
     * {@code [keyStart, keyStart + kLen)}, so blockwise backends skip empty blocks and unmasked blocks skip the
     * mask.
     *
     * @param spec the attention spec
     * @param queryStart position of the block's first query
     * @param qLen number of queries (> 0)
     * @param keyStart index of the block's first key
     * @param kLen number of keys (> 0)
     * @return the block's coverage
     */
    public static Coverage coverage(AttentionSpec spec, long queryStart, long qLen, long keyStart, long kLen) {
        if (!spec.hasMask()) {
            return Coverage.FULL;
        }
        long posLo = queryStart;
        long posHi = queryStart + qLen - 1;
        long keyLo = keyStart;
        long keyHi = keyStart + kLen - 1;
        // Each bound is monotone in pos and key, so the extreme corners decide.
        long right = spec.isCausal()
                ? (spec.getWindowRight() >= 0 ? Math.min(0, spec.getWindowRight()) : 0)
                : spec.getWindowRight();
        long left = spec.getWindowLeft();
        boolean sinkInBlock = keyLo < spec.getSinkTokens();
        // Nothing visible: all keys right of the right bound for every query, or left of the left bound
        // (and no sink keys in the block).
        if (right >= 0 && keyLo - posHi > right) {
            return Coverage.NONE;
        }
        if (left >= 0 && keyHi - posLo < -left && !sinkInBlock) {
            return Coverage.NONE;
        }
        boolean rightOk = right < 0 || keyHi - posLo <= right;
        boolean leftOk = left < 0 || keyLo - posHi >= -left || keyHi < spec.getSinkTokens();
        return rightOk && leftOk ? Coverage.FULL : Coverage.PARTIAL;
    }

    /**
     * Builds the visibility of a block: which keys each query sees.
     *
     * @param manager the manager that owns the result
     * @param spec the attention spec
     * @param queryStart position of the block's first query
     * @param qLen number of queries
     * @param keyStart index of the block's first key
     * @param kLen number of keys
     * @return boolean [qLen, kLen], true where visible; null when the block is {@link Coverage#FULL} (every key
     *     visible to every query)
     */
    public static NDArray visible(NDManager manager, AttentionSpec spec, long queryStart, long qLen, long keyStart,
            long kLen) {
        if (coverage(spec, queryStart, qLen, keyStart, kLen) == Coverage.FULL) {
            return null;
        }
        NDArray pos = manager.arange(queryStart, queryStart + qLen, 1L, DataType.INT64).reshape(qLen, 1);
        NDArray key = manager.arange(keyStart, keyStart + kLen, 1L, DataType.INT64).reshape(1, kLen);
        NDArray rel = key.sub(pos); // [qLen, kLen]
        NDArray visible = manager.ones(new Shape(qLen, kLen), DataType.BOOLEAN);
        long right = spec.getWindowRight();
        if (spec.isCausal()) {
            right = right >= 0 ? Math.min(right, 0) : 0;
        }
        if (right >= 0) {
            visible = visible.logicalAnd(rel.lte(right));
        }
        if (spec.getWindowLeft() >= 0) {
            NDArray leftOk = rel.gte(-spec.getWindowLeft());
            if (spec.getSinkTokens() > 0) {
                leftOk = leftOk.logicalOr(key.lt(spec.getSinkTokens()).broadcast(qLen, kLen));
            }
            visible = visible.logicalAnd(leftOk);
        }
        return visible;
    }

    /**
     * Builds the ALiBi bias of a block, {@code -slope[h] * |rel|}.
     *
     * @param manager the manager that owns the result
     * @param spec the attention spec
     * @param queryStart position of the block's first query
     * @param qLen number of queries
     * @param keyStart index of the block's first key
     * @param kLen number of keys
     * @param firstHead the first query head of the block
     * @param heads the number of query heads in the block
     * @return fp32 [heads, qLen, kLen], or null when ALiBi is off
     */
    public static NDArray alibi(NDManager manager, AttentionSpec spec, long queryStart, long qLen, long keyStart,
            long kLen, int firstHead, int heads) {
        if (!spec.hasAlibi()) {
            return null;
        }
        NDArray pos = manager.arange(queryStart, queryStart + qLen, 1L, DataType.INT64).reshape(qLen, 1);
        NDArray key = manager.arange(keyStart, keyStart + kLen, 1L, DataType.INT64).reshape(1, kLen);
        NDArray distance = key.sub(pos).abs().toType(DataType.FLOAT32, false).expandDims(0); // [1, qLen, kLen]
        float[] blockSlopes = new float[heads];
        System.arraycopy(spec.getAlibiSlopes(), firstHead, blockSlopes, 0, heads);
        return manager.create(blockSlopes).reshape(heads, 1, 1).mul(distance).neg(); // [heads, qLen, kLen]
    }
}
