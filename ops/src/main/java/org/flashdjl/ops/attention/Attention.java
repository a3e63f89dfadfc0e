package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.OpScope;

/**
 * The attention operator over DJL NDArrays: {@code softmax(scale * q k^T + bias) v} as {@link AttentionSpec}
 * defines it, with GQA/MQA by head ratio, dense or varlen inputs, computed by a named {@link AttentionBackend}.
 *
 * <pre>{@code
 * AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
 * try (NDScope step = new NDScope()) {
 *     AttentionOutput out = Attention.forward(q, k, v, spec);     // q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D]
 *     NDArray o = out.getOutput();                                // [B, Hq, Lq, D]
 *     NDArray lse = out.getLse();                                 // [B, Hq, Lq] fp32 (bshd: [B, Lq, Hq])
 * }                                                               // both freed with the step
 * }</pre>
 *
 * <p>Results are the caller's like those of any DJL op: on the query's manager, in the caller's {@code NDScope}
 * ({@link org.flashdjl.ops.OpScope}); the operator's temporaries are freed before it returns.
 */
public final class Attention {

    private Attention() {}

    /**
     * Runs attention with the {@code auto} backend.
     *
     * @param q queries in the spec's layout
     * @param k keys in the spec's layout
     * @param v values in the spec's layout
     * @param spec what to compute
     * @return the output and optional LSE
     */
    public static AttentionOutput forward(NDArray q, NDArray k, NDArray v, AttentionSpec spec) {
        return forward(q, k, v, spec, AttentionBackends.AUTO);
    }

    /**
     * Runs attention with a named backend.
     *
     * @param q queries [B, Hq, Lq, D] (bhsd) or [B, Lq, Hq, D] (bshd)
     * @param k keys [B, Hkv, Lk, D] / [B, Lk, Hkv, D]
     * @param v values [B, Hkv, Lk, Dv] / [B, Lk, Hkv, Dv]
     * @param spec what to compute
     * @param backend a name from {@link AttentionBackends#names()}
     * @return the output and optional LSE
     */
    public static AttentionOutput forward(NDArray q, NDArray k, NDArray v, AttentionSpec spec, String backend) {
        return forward(AttentionProblem.builder(q, k, v, spec).build(), backend);
    }

    /**
     * Runs attention over packed variable-length sequences.
     *
     * @param q packed queries [totalQ, Hq, D]
     * @param k packed keys [totalK, Hkv, D]
     * @param v packed values [totalK, Hkv, Dv]
     * @param cuSeqlensQ int32 [B + 1] query offsets
     * @param cuSeqlensK int32 [B + 1] key offsets
     * @param spec what to compute (its layout is ignored)
     * @param backend a name from {@link AttentionBackends#names()}
     * @return output [totalQ, Hq, Dv] and optional LSE [totalQ, Hq]
     */
    public static AttentionOutput forwardVarlen(NDArray q, NDArray k, NDArray v, NDArray cuSeqlensQ,
            NDArray cuSeqlensK, AttentionSpec spec, String backend) {
        return forward(AttentionProblem.builder(q, k, v, spec).optVarlen(cuSeqlensQ, cuSeqlensK).build(), backend);
    }

    /**
     * Runs a validated problem.
     *
     * @param problem the problem
     * @param backend a name from {@link AttentionBackends#names()}
     * @return the output and optional LSE
     */
    public static AttentionOutput forward(AttentionProblem problem, String backend) {
        AttentionBackend selected = AttentionBackends.select(backend, problem);
        if (problem.isVarlen() && !selected.supportsVarlen()) {
            return splitVarlen(problem, selected);
        }
        if (problem.getQueryLength() == 0 || problem.getKeyLength() == 0) {
            return empty(problem);
        }
        return selected.forward(problem);
    }

    // No query rows or no keys: output 0 and LSE -inf, without a backend.
    private static AttentionOutput empty(AttentionProblem problem) {
        NDManager manager = problem.getQuery().getManager();
        NDArray out = manager.zeros(problem.outputShape(), problem.getDataType());
        NDArray lse = problem.getSpec().isReturnLse()
                ? manager.full(problem.lseShape(), Float.NEGATIVE_INFINITY, DataType.FLOAT32)
                : null;
        return new AttentionOutput(out, lse);
    }

    // One dense bshd call per sequence, concatenated back into the packed layout.
    private static AttentionOutput splitVarlen(AttentionProblem problem, AttentionBackend backend) {
        int[] cuQ = problem.getCuSeqlensQ();
        int[] cuK = problem.getCuSeqlensK();
        AttentionSpec spec = problem.getSpec().toBuilder().optLayout(QkvLayout.BSHD).build();
        try (OpScope scope = new OpScope()) {
            NDList outs = new NDList();
            NDList lses = new NDList();
            for (int b = 0; b < cuQ.length - 1; b++) {
                if (cuQ[b + 1] == cuQ[b]) {
                    continue;
                }
                NDIndex qRows = new NDIndex("{}:{}", cuQ[b], cuQ[b + 1]);
                NDIndex kRows = new NDIndex("{}:{}", cuK[b], cuK[b + 1]);
                AttentionProblem seq = AttentionProblem.builder(problem.getQuery().get(qRows).expandDims(0),
                        problem.getKey().get(kRows).expandDims(0), problem.getValue().get(kRows).expandDims(0),
                        spec).build();
                AttentionOutput o = seq.getKeyLength() == 0 ? empty(seq) : backend.forward(seq);
                outs.add(o.getOutput().squeeze(0)); // [Lq_b, Hq, Dv]
                if (o.getLse() != null) {
                    lses.add(o.getLse().squeeze(0)); // [Lq_b, Hq]
                }
            }
            if (outs.isEmpty()) {
                AttentionOutput none = empty(problem);
                return new AttentionOutput(scope.ret(none.getOutput()), scope.ret(none.getLse()));
            }
            NDArray out = NDArrays.concat(outs, 0); // [totalQ, Hq, Dv]
            NDArray lse = lses.isEmpty() ? null : NDArrays.concat(lses, 0); // [totalQ, Hq]
            return new AttentionOutput(scope.ret(out), scope.ret(lse));
        }
    }
}
