package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

import org.flashdjl.ops.OpScope;

/**
 * The readable reference backend {@code math}: composite NDArray ops (scores, mask, softmax, value product) over
 * the whole [Lq, Lk] score matrix in fp32, on any device DJL runs on.
 */
public final class MathBackend extends NdArrayBackend {

    /** The backend name. */
    public static final String NAME = "math";

    /** Creates the backend. */
    public MathBackend() {
        super(NAME, "reference: the whole [Lq, Lk] score matrix in fp32", 0);
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(AttentionProblem problem) {
        AttentionSpec spec = problem.getSpec();
        QkvLayout layout = spec.getLayout();
        try (OpScope scope = new OpScope()) {
            NDArray q = BlockMath.fp32(BlockMath.toBhsd(problem.getQuery(), layout)); // [B, Hq, Lq, D]
            NDArray k = BlockMath.fp32(BlockMath.toBhsd(problem.getKey(), layout)); // [B, Hkv, Lk, D]
            NDArray v = BlockMath.fp32(BlockMath.toBhsd(problem.getValue(), layout)); // [B, Hkv, Lk, Dv]
            NDList r = BlockMath.attend(spec, problem.getScale(), q, k, v, problem.getQueryStart(),
                    problem.getKeyStart(), problem.keyValid(q.getManager(), 0, problem.getKeyLength()));
            NDArray out = BlockMath.fromBhsd(r.get(0).toType(problem.getDataType(), false), layout);
            NDArray lse = spec.isReturnLse() ? BlockMath.lseFromBhsd(r.get(1), layout) : null;
            return new AttentionOutput(scope.ret(out), scope.ret(lse));
        }
    }
}
