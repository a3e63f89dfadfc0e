package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.cascade.MergeState;

/**
 * The memory-efficient backend {@code online}: the flash-attention recurrence in NDArray ops.
 *
 * <p>Queries go in chunks of {@code queryChunk} rows; for each, key chunks of {@code keyChunk} columns are
 * attended one at a time ({@link BlockMath#attend}) and their (output, LSE) states folded together with
 * {@link MergeState#mergeStateInPlace}, the same running max / sum rescaling as flash attention. Chunks that the
 * mask hides entirely ({@link MaskRule#coverage}) are skipped, so causal and windowed calls do proportionally
 * less work. Peak extra memory is a few [batch, Hq, queryChunk, keyChunk] fp32 blocks, never [Lq, Lk].
 */
public final class OnlineBackend extends NdArrayBackend {

    /** The backend name. */
    public static final String NAME = "online";

    /** Default query rows per chunk. */
    public static final int DEFAULT_QUERY_CHUNK = 1024;

    /** Default keys per chunk. */
    public static final int DEFAULT_KEY_CHUNK = 1024;

    private final int queryChunk;
    private final int keyChunk;

    /** Creates the backend with the default chunk sizes. */
    public OnlineBackend() {
        this(DEFAULT_QUERY_CHUNK, DEFAULT_KEY_CHUNK);
    }

    /**
     * Creates the backend with explicit chunk sizes.
     *
     * @param queryChunk query rows per chunk, {@code >= 1}
     * @param keyChunk keys per chunk, {@code >= 1}
     */
    public OnlineBackend(int queryChunk, int keyChunk) {
        super(NAME);
        Checks.checkAtLeast("queryChunk", queryChunk, 1, "");
        Checks.checkAtLeast("keyChunk", keyChunk, 1, "");
        this.queryChunk = queryChunk;
        this.keyChunk = keyChunk;
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(AttentionProblem problem) {
        AttentionSpec spec = problem.getSpec();
        QkvLayout layout = spec.getLayout();
        float scale = problem.getScale();
        long lq = problem.getQueryLength();
        long lk = problem.getKeyLength();
        NDManager manager = problem.getQuery().getManager();
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray q = BlockMath.toBhsd(problem.getQuery(), layout); // [B, Hq, Lq, D]
            NDArray k = BlockMath.toBhsd(problem.getKey(), layout); // [B, Hkv, Lk, D]
            NDArray v = BlockMath.toBhsd(problem.getValue(), layout); // [B, Hkv, Lk, Dv]
            NDArray out = manager.zeros(new Shape(problem.getBatch(), problem.getQueryHeads(), lq,
                    problem.getValueDim()), DataType.FLOAT32); // [B, Hq, Lq, Dv]
            NDArray lse = manager.full(new Shape(problem.getBatch(), problem.getQueryHeads(), lq),
                    Float.NEGATIVE_INFINITY, DataType.FLOAT32); // [B, Hq, Lq]
            for (long qs = 0; qs < lq; qs += queryChunk) {
                long qe = Math.min(lq, qs + queryChunk);
                long queryStart = problem.getQueryStart() + qs;
                try (NDScope chunkScope = new NDScope()) {
                    chunkScope.suppressNotUsedWarning();
                    NDArray qc = BlockMath.fp32(q.get(new NDIndex(":, :, {}:{}", qs, qe)));
                    NDArray accOut = null; // [B, Hq, qe - qs, Dv] fp32
                    NDArray accLse = null; // [B, Hq, qe - qs] fp32
                    for (long ks = 0; ks < lk; ks += keyChunk) {
                        long ke = Math.min(lk, ks + keyChunk);
                        long keyStart = problem.getKeyStart() + ks;
                        if (MaskRule.coverage(spec, queryStart, qe - qs, keyStart, ke - ks)
                                == MaskRule.Coverage.NONE) {
                            continue;
                        }
                        boolean first = accOut == null;
                        NDList block;
                        try (NDScope blockScope = new NDScope()) {
                            blockScope.suppressNotUsedWarning();
                            NDIndex keys = new NDIndex(":, :, {}:{}", ks, ke);
                            block = BlockMath.attend(spec, scale, qc, BlockMath.fp32(k.get(keys)),
                                    BlockMath.fp32(v.get(keys)), queryStart, keyStart);
                            if (first) {
                                NDScope.unregister(block); // kept as the running state, owned by chunkScope
                            } else {
                                MergeState.mergeStateInPlace(accOut, accLse, block.get(0), block.get(1));
                            }
                        }
                        if (first) {
                            accOut = block.get(0);
                            accLse = block.get(1);
                            NDScope.register(accOut);
                            NDScope.register(accLse);
                        }
                    }
                    if (accOut != null) {
                        out.set(new NDIndex(":, :, {}:{}", qs, qe), accOut);
                        lse.set(new NDIndex(":, :, {}:{}", qs, qe), accLse);
                    }
                }
            }
            NDArray result = BlockMath.fromBhsd(out.toType(problem.getDataType(), false), layout);
            NDScope.unregister(result);
            if (spec.isReturnLse()) {
                NDScope.unregister(lse);
                return new AttentionOutput(result, lse);
            }
            return new AttentionOutput(result, null);
        }
    }
}
