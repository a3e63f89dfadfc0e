package org.flashdjl.ops.cascade;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;

/**
 * Merging of attention states: an output {@code v} over one segment of keys with its log-sum-exp {@code s}
 * (natural log, fp32). FlashInfer's cascade semantics (docs/SEMANTICS.md), with a natural-log LSE (FlashInfer's is
 * base 2).
 *
 * <p>The merge of {@code (v_a, s_a)} and {@code (v_b, s_b)} is {@code s = logaddexp(s_a, s_b)},
 * {@code v = v_a e^(s_a - s) + v_b e^(s_b - s)}: the attention over the union of both key segments. Two
 * {@code -inf} states merge to {@code (0, -inf)}, never NaN. Shapes: {@code s} is {@code v}'s shape without the
 * last (head-dim) axis, e.g. v [seq, heads, dim] with s [seq, heads] (FlashInfer): exactly the shape of the LSE
 * every attention call returns with its output (bhsd [batch, heads, seq], bshd [batch, seq, heads], varlen and
 * paged [totalQ, heads]). Arithmetic is fp32; {@code v} keeps its dtype.
 */
public final class MergeState {

    private MergeState() {}

    /**
     * Merges two states into a new one.
     *
     * @param vA output over segment a [..., D], float16/32/64
     * @param sA LSE of segment a [...], fp32
     * @param vB output over segment b, same shape and dtype as vA
     * @param sB LSE of segment b, same shape as sA
     * @return the merged output (vA's dtype) and LSE (fp32)
     */
    public static NDList mergeState(NDArray vA, NDArray sA, NDArray vB, NDArray sB) {
        checkPair("vA", vA, "sA", sA);
        checkPair("vB", vB, "sB", sB);
        checkSame("vA", vA, "vB", vB);
        try (OpScope scope = new OpScope()) {
            return scope.ret(merge(vA, sA, vB, sB));
        }
    }

    /**
     * Merges {@code (vOther, sOther)} into {@code (v, s)} in place: both keep their native buffers.
     *
     * @param v output [..., D], updated in place
     * @param s LSE [...] fp32, updated in place
     * @param vOther the other output, same shape and dtype as v
     * @param sOther the other LSE, same shape as s
     */
    public static void mergeStateInPlace(NDArray v, NDArray s, NDArray vOther, NDArray sOther) {
        checkPair("v", v, "s", s);
        checkPair("vOther", vOther, "sOther", sOther);
        checkSame("v", v, "vOther", vOther);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDList merged = merge(v, s, vOther, sOther);
            NDIndex all = new NDIndex("...");
            v.set(all, merged.get(0));
            s.set(all, merged.get(1));
        }
    }

    /**
     * Merges {@code n} states stacked along {@code stateAxis}.
     *
     * @param v outputs with the states along {@code stateAxis}, e.g. [seq, n, heads, D] with stateAxis 1
     * @param s LSEs: v's shape without the last axis, e.g. [seq, n, heads]
     * @param stateAxis the axis of v (and s) that indexes the states, not the last axis of v
     * @return the merged output (v without stateAxis, v's dtype) and LSE (s without stateAxis, fp32)
     */
    public static NDList mergeStates(NDArray v, NDArray s, int stateAxis) {
        checkPair("v", v, "s", s);
        int rank = v.getShape().dimension();
        int axis = stateAxis < 0 ? stateAxis + rank : stateAxis;
        if (axis < 0 || axis >= rank - 1) {
            throw new IllegalArgumentException("stateAxis " + stateAxis + " must index an axis of v " + v.getShape()
                    + " other than the last (head dim): allowed " + (-rank) + ".." + (rank - 2)
                    + " except -1");
        }
        if (v.getShape().get(axis) == 0) {
            throw new IllegalArgumentException("mergeStates needs at least one state along axis " + axis
                    + ", got v " + v.getShape());
        }
        try (OpScope scope = new OpScope()) {
            NDArray lse = s.toType(DataType.FLOAT32, false);
            NDArray max = lse.max(new int[] {axis}, true).clip(-Float.MAX_VALUE, Float.POSITIVE_INFINITY);
            NDArray w = lse.sub(max).exp(); // [..., n, ...]
            NDArray sum = w.sum(new int[] {axis}, true); // >= 1 unless every state is -inf
            NDArray out = v.toType(DataType.FLOAT32, false).mul(w.expandDims(-1)).sum(new int[] {axis})
                    .div(sum.maximum(1f).expandDims(-1).squeeze(axis));
            NDArray outLse = max.add(sum.log()).squeeze(axis);
            return scope.ret(new NDList(out.toType(v.getDataType(), false), outLse));
        }
    }

    /**
     * Merges {@code n} states stacked along axis 1, as FlashInfer's {@code merge_states}: v [seq, n, heads, D],
     * s [seq, n, heads].
     *
     * @param v the outputs
     * @param s the LSEs
     * @return merged v [seq, heads, D] and s [seq, heads]
     */
    public static NDList mergeStates(NDArray v, NDArray s) {
        return mergeStates(v, s, 1);
    }

    // Both states in fp32; results in v's dtype and fp32.
    private static NDList merge(NDArray vA, NDArray sA, NDArray vB, NDArray sB) {
        NDArray a = sA.toType(DataType.FLOAT32, false);
        NDArray b = sB.toType(DataType.FLOAT32, false);
        NDArray max = a.maximum(b).clip(-Float.MAX_VALUE, Float.POSITIVE_INFINITY);
        NDArray wA = a.sub(max).exp();
        NDArray wB = b.sub(max).exp();
        NDArray sum = wA.add(wB); // >= 1 unless both are -inf
        NDArray v = vA.toType(DataType.FLOAT32, false).mul(wA.expandDims(-1))
                .add(vB.toType(DataType.FLOAT32, false).mul(wB.expandDims(-1)))
                .div(sum.maximum(1f).expandDims(-1));
        return new NDList(v.toType(vA.getDataType(), false), max.add(sum.log()));
    }

    private static void checkPair(String vName, NDArray v, String sName, NDArray s) {
        Checks.checkDataType(vName, v, Checks.FLOAT_TYPES);
        Checks.checkDataType(sName, s, Checks.FLOAT_TYPES);
        Checks.checkSameDevice(vName, v, sName, s);
        Shape vs = v.getShape();
        if (vs.dimension() < 1 || !s.getShape().equals(vs.slice(0, vs.dimension() - 1))) {
            throw new IllegalArgumentException(sName + " must have " + vName + "'s shape without its last axis ("
                    + (vs.dimension() < 1 ? "v needs rank >= 1" : vs.slice(0, vs.dimension() - 1).toString())
                    + "), got " + s.getShape() + "; an attention output pairs with its LSE as returned");
        }
    }

    private static void checkSame(String nameA, NDArray a, String nameB, NDArray b) {
        Checks.checkSameDevice(nameA, a, nameB, b);
        Checks.checkSameDataType(nameA, a, nameB, b);
        if (!a.getShape().equals(b.getShape())) {
            throw new IllegalArgumentException(nameA + " " + a.getShape() + " and " + nameB + " " + b.getShape()
                    + " must have the same shape");
        }
    }
}
