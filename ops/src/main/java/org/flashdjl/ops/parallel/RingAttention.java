package org.flashdjl.ops.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cascade.MergeState;
import org.flashdjl.ops.parallel.group.P2POp;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.Work;

import java.util.List;

/**
 * Ring attention over NDArrays: each rank keeps its query shard while the key/value shards travel around the ring;
 * the transfer of the next shard is posted before the current block is attended, so communication overlaps
 * compute; partial (output, LSE) states are merged per query piece with {@link MergeState#mergeStateInPlace}.
 */
final class RingAttention {

    private RingAttention() {}

    /**
     * Runs the ring.
     *
     * @param group the group (size >= 2)
     * @param q local query shard in the spec's layout
     * @param k local key shard
     * @param v local value shard
     * @param spec the spec, layout already set
     * @param backend the local backend name
     * @param convertToFp32 keep the running outputs in fp32 (else in the input dtype)
     * @param sharding how the shards were cut
     * @return local output (and its LSE, [B, Hq, Lq_local] / [B, Lq_local, Hq], when the spec asks)
     */
    static AttentionOutput forward(ProcessGroup group, NDArray q, NDArray k, NDArray v, AttentionSpec spec,
            String backend, boolean convertToFp32, SequenceSharding sharding) {
        QkvLayout layout = spec.getLayout();
        int seqAxis = layout.seqAxis();
        int world = group.size();
        int rank = group.rank();
        ShardLengths lengths = ShardLengths.gather(group, q.getShape().get(seqAxis), k.getShape().get(seqAxis));
        long[] lq = lengths.query();
        long[] lk = lengths.key();
        RingSchedule schedule = RingSchedule.create(spec, lq, lk, sharding);
        AttentionSpec blockSpec = spec.toBuilder().optReturnLse(true).build();
        List<SequenceSharding.Piece> pieces = schedule.queryPieces(rank);
        NDArray[] acc = new NDArray[pieces.size()]; // per query piece: layout [B, Hq|len, len|Hq, Dv]
        NDArray[] accLse = new NDArray[pieces.size()]; // bhsd [B, Hq, len], bshd [B, len, Hq]; fp32
        NDManager manager = q.getManager();
        int next = (rank + 1) % world;
        int prev = (rank - 1 + world) % world;
        try (OpScope scope = new OpScope()) {
            NDArray curK = k; // [B, Hkv|Lk_src, Lk_src|Hkv, D]
            NDArray curV = v; // [B, Hkv|Lk_src, Lk_src|Hkv, Dv]
            for (int step = 0; step < world; step++) {
                Work transfer = null;
                NDArray nextK = null;
                NDArray nextV = null;
                if (step < world - 1) {
                    long nextLen = schedule.keyLength(schedule.source(rank, step + 1));
                    nextK = manager.create(withAxis(k.getShape(), seqAxis, nextLen), k.getDataType(), k.getDevice());
                    nextV = manager.create(withAxis(v.getShape(), seqAxis, nextLen), v.getDataType(), v.getDevice());
                    // Post the next transfer first: it runs while this step's blocks are attended.
                    transfer = group.batchIsendIrecv(List.of(P2POp.send(curK, next), P2POp.send(curV, next),
                            P2POp.recv(nextK, prev), P2POp.recv(nextV, prev)));
                }
                attendStep(schedule.blocks(rank, step), q, curK, curV, blockSpec, backend, convertToFp32, acc,
                        accLse);
                if (transfer != null) {
                    transfer.await();
                    if (curK != k) {
                        curK.close();
                        curV.close();
                    }
                    curK = nextK;
                    curV = nextV;
                }
            }
            AttentionOutput result = finish(q, v, spec, pieces, acc, accLse);
            return new AttentionOutput(scope.ret(result.getOutput()), scope.ret(result.getLse()));
        }
    }

    private static void attendStep(List<RingSchedule.Block> blocks, NDArray q, NDArray k, NDArray v,
            AttentionSpec blockSpec, String backend, boolean convertToFp32, NDArray[] acc, NDArray[] accLse) {
        QkvLayout layout = blockSpec.getLayout();
        int seqAxis = layout.seqAxis();
        for (RingSchedule.Block b : blocks) {
            try (OpScope scope = new OpScope()) { // the first state of a piece lives on in the caller's scope
                NDArray qb = ContextParallel.slice(q, seqAxis, b.queryLocalStart(), b.queryLength());
                NDArray kb = ContextParallel.slice(k, seqAxis, b.keyLocalStart(), b.keyLength());
                NDArray vb = ContextParallel.slice(v, seqAxis, b.keyLocalStart(), b.keyLength());
                AttentionProblem problem = AttentionProblem.builder(qb, kb, vb, blockSpec)
                        .optPositions(b.queryPosition(), b.keyPosition()).build();
                AttentionOutput o = Attention.forward(problem, backend);
                NDArray out = o.getOutput();
                if (convertToFp32 && out.getDataType() != DataType.FLOAT32) {
                    out = out.toType(DataType.FLOAT32, false);
                }
                NDArray lse = o.getLse(); // the output's layout without Dv: [B, Hq, len] / [B, len, Hq]
                int i = b.queryPiece();
                if (acc[i] == null) {
                    acc[i] = scope.ret(out);
                    accLse[i] = scope.ret(lse);
                } else {
                    MergeState.mergeStateInPlace(acc[i], accLse[i], out, lse);
                }
            }
        }
    }

    // Concatenates the merged pieces (zeros / -inf for pieces that saw no key) in shard order.
    private static AttentionOutput finish(NDArray q, NDArray v, AttentionSpec spec,
            List<SequenceSharding.Piece> pieces, NDArray[] acc, NDArray[] accLse) {
        QkvLayout layout = spec.getLayout();
        int seqAxis = layout.seqAxis();
        NDManager manager = q.getManager();
        Shape qs = q.getShape();
        long batch = qs.get(0);
        long heads = qs.get(layout.headAxis());
        long dv = v.getShape().get(3);
        NDList outs = new NDList();
        NDList lses = new NDList();
        for (int i = 0; i < pieces.size(); i++) {
            long len = pieces.get(i).length();
            if (len == 0) {
                continue;
            }
            if (acc[i] == null) {
                Shape os = layout == QkvLayout.BHSD ? new Shape(batch, heads, len, dv) : new Shape(batch, len, heads, dv);
                Shape ls = layout == QkvLayout.BHSD ? new Shape(batch, heads, len) : new Shape(batch, len, heads);
                outs.add(manager.zeros(os, q.getDataType(), q.getDevice()));
                lses.add(manager.full(ls, Float.NEGATIVE_INFINITY, DataType.FLOAT32, q.getDevice()));
            } else {
                outs.add(acc[i].toType(q.getDataType(), false));
                lses.add(accLse[i]);
            }
        }
        NDArray out;
        NDArray lse;
        if (outs.isEmpty()) { // no local queries
            Shape os = layout == QkvLayout.BHSD ? new Shape(batch, heads, 0, dv) : new Shape(batch, 0, heads, dv);
            out = manager.zeros(os, q.getDataType(), q.getDevice());
            Shape ls = layout == QkvLayout.BHSD ? new Shape(batch, heads, 0) : new Shape(batch, 0, heads);
            lse = manager.zeros(ls, DataType.FLOAT32, q.getDevice());
        } else {
            out = ContextParallel.cat(outs, seqAxis);
            lse = ContextParallel.cat(lses, seqAxis); // the LSE's sequence axis is the output's
        }
        return new AttentionOutput(out, spec.isReturnLse() ? lse : null);
    }

    static Shape withAxis(Shape shape, int axis, long size) {
        long[] dims = shape.getShape().clone(); // getShape() is the Shape's own array
        dims[axis] = size;
        return new Shape(dims);
    }
}
