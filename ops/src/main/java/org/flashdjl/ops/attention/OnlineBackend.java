package org.flashdjl.ops.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;

/**
 * The memory-efficient backend {@code online}: the flash-attention recurrence in NDArray ops.
 *
 * <p>Queries go in chunks of {@code queryChunk} rows; for each, key chunks of {@code keyChunk} columns are scored
 * one at a time ({@link BlockMath#scores}) and folded into a running row max {@code m}, row sum {@code l} and
 * unnormalised output {@code acc}: with {@code m' = max(m, rowmax(s))}, {@code l = l e^(m - m') + rowsum(e^(s -
 * m'))} and {@code acc = acc e^(m - m') + e^(s - m') v}; at the end {@code out = acc / l} and
 * {@code lse = m + log l}. Chunks that the mask hides entirely ({@link MaskRule#coverage}) are skipped, so causal
 * and windowed calls do proportionally less work. Peak extra memory is a few [batch, Hq, queryChunk, keyChunk] fp32
 * blocks, never [Lq, Lk]. With the default chunk sizes, a call without mask (nothing to skip) widens its key blocks
 * up to {@link #BLOCK_ELEMENT_BUDGET} scores per block, so its products stay large; explicit chunk sizes are
 * used as given.
 */
public final class OnlineBackend extends NdArrayBackend {

    /** The backend name. */
    public static final String NAME = "online";

    /** Default query rows per chunk. */
    public static final int DEFAULT_QUERY_CHUNK = 1024;

    /** Default keys per chunk. */
    public static final int DEFAULT_KEY_CHUNK = 1024;

    /** Scores per block ([batch, Hq, queryChunk, keys]) an unmasked call may widen its key blocks to: 128 MiB. */
    public static final long BLOCK_ELEMENT_BUDGET = 1L << 25;

    private static final NDIndex ALL = new NDIndex("...");

    private final int queryChunk;
    private final int keyChunk;
    private final boolean widenUnmasked;

    /** Creates the backend with the default chunk sizes. */
    public OnlineBackend() {
        this(DEFAULT_QUERY_CHUNK, DEFAULT_KEY_CHUNK, true);
    }

    /**
     * Creates the backend with explicit chunk sizes, used as given (no widening of unmasked calls).
     *
     * @param queryChunk query rows per chunk, {@code >= 1}
     * @param keyChunk keys per chunk, {@code >= 1}
     */
    public OnlineBackend(int queryChunk, int keyChunk) {
        this(queryChunk, keyChunk, false);
    }

    private OnlineBackend(int queryChunk, int keyChunk, boolean widenUnmasked) {
        super(NAME, "flash-attention recurrence in NDArray ops (chunks merged by LSE)", 10);
        this.widenUnmasked = widenUnmasked;
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
        long rowsPerBlock = (long) problem.getBatch() * problem.getQueryHeads() * Math.min(lq, queryChunk);
        long keyChunk = spec.hasMask() || !widenUnmasked
                ? this.keyChunk
                : Math.max(this.keyChunk, Math.min(lk, BLOCK_ELEMENT_BUDGET / Math.max(1, rowsPerBlock)));
        try (OpScope scope = new OpScope()) {
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
                    NDIndex rows = new NDIndex(":, :, {}:{}", qs, qe);
                    NDArray qc = BlockMath.fp32(q.get(rows)).mul(scale); // scale * q [B, Hq, qc, D]
                    Shape rowShape = new Shape(problem.getBatch(), problem.getQueryHeads(), qe - qs, 1);
                    NDArray m = manager.full(rowShape, Float.NEGATIVE_INFINITY, DataType.FLOAT32); // [B, Hq, qc, 1]
                    NDArray l = manager.zeros(rowShape, DataType.FLOAT32); // [B, Hq, qc, 1]
                    NDArray acc = manager.zeros(new Shape(problem.getBatch(), problem.getQueryHeads(), qe - qs,
                            problem.getValueDim()), DataType.FLOAT32); // [B, Hq, qc, Dv]
                    for (long ks = 0; ks < lk; ks += keyChunk) {
                        long ke = Math.min(lk, ks + keyChunk);
                        long keyStart = problem.getKeyStart() + ks;
                        if (MaskRule.coverage(spec, queryStart, qe - qs, keyStart, ke - ks)
                                == MaskRule.Coverage.NONE) {
                            continue;
                        }
                        try (NDScope blockScope = new NDScope()) {
                            blockScope.suppressNotUsedWarning();
                            NDIndex keys = new NDIndex(":, :, {}:{}", ks, ke);
                            NDArray visible = BlockMath.visible(BlockMath.visible(manager, spec, queryStart,
                                    qe - qs, keyStart, ke - ks), problem.keyValid(manager, ks, ke - ks));
                            // [qc, kc], [B, 1, 1, kc], [B, 1, qc, kc] or null
                            NDArray s = BlockMath.scores(spec, qc, BlockMath.fp32(k.get(keys)), visible, queryStart,
                                    keyStart); // [B, Hq, qc, kc]
                            NDArray mNew = m.maximum(BlockMath.finiteRowMax(s)); // finite: the block max is clipped
                            NDArray alpha = m.sub(mNew).exp(); // 0 where m was -inf
                            NDArray p = s.subi(mNew).exp();
                            l.muli(alpha).addi(p.sum(new int[] {3}, true));
                            acc.muli(alpha).addi(BlockMath.weightedValues(p, BlockMath.fp32(v.get(keys)), visible));
                            m.set(ALL, mNew);
                        }
                    }
                    // l >= 1 on rows that saw a key (the max contributes e^0), 0 on rows that saw none.
                    out.set(rows, acc.divi(l.maximum(1f)));
                    lse.set(rows, m.add(l.log()).squeeze(3));
                }
            }
            NDArray result = BlockMath.fromBhsd(out.toType(problem.getDataType(), false), layout);
            return new AttentionOutput(scope.ret(result),
                    spec.isReturnLse() ? scope.ret(BlockMath.lseFromBhsd(lse, layout)) : null);
        }
    }
}
