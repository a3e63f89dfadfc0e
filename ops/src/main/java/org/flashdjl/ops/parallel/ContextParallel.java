package org.flashdjl.ops.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;

import org.flashdjl.ops.OpScope;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.flashdjl.ops.parallel.group.ProcessGroup;

/**
 * Sharding helpers of context parallelism: cut a full sequence into a rank's shard, and put the shards back
 * together, in the {@link SequenceSharding#CONTIGUOUS contiguous} or {@link SequenceSharding#ZIGZAG zigzag}
 * layout.
 *
 * <pre>{@code
 * NDArray qShard = ContextParallel.shard(q, 2, group.rank(), group.size(), SequenceSharding.ZIGZAG); // bhsd
 * NDArray outShard = cp.forward(qShard, kShard, vShard, spec).getOutput();
 * NDArray out = ContextParallel.gather(outShard, 2, group, SequenceSharding.ZIGZAG); // the full sequence
 * }</pre>
 */
public final class ContextParallel {

    private ContextParallel() {}

    /**
     * Returns a rank's shard of a full sequence.
     *
     * @param x the full tensor, e.g. [B, H, L, D] with seqAxis 2 or [B, L, H, D] with seqAxis 1
     * @param seqAxis the sequence axis (negative counts from the end)
     * @param rank the rank
     * @param world the number of ranks
     * @param sharding the layout
     * @return a new contiguous array with the rank's tokens along seqAxis, owned by x's manager
     */
    public static NDArray shard(NDArray x, int seqAxis, int rank, int world, SequenceSharding sharding) {
        Objects.requireNonNull(sharding, "sharding");
        int axis = axis(x, seqAxis);
        long total = x.getShape().get(axis);
        try (OpScope scope = new OpScope()) {
            NDList parts = new NDList();
            for (SequenceSharding.Piece p : sharding.pieces(total, rank, world)) {
                if (p.length() > 0) {
                    parts.add(slice(x, axis, p.globalStart(), p.length()));
                }
            }
            NDArray out = parts.isEmpty() ? slice(x, axis, 0, 0).duplicate() : cat(parts, axis);
            return scope.ret(out);
        }
    }

    /**
     * Returns a rank's shard of a full sequence.
     *
     * @param x the full tensor
     * @param seqAxis the sequence axis
     * @param rank the rank
     * @param world the number of ranks
     * @param zigzag true for {@link SequenceSharding#ZIGZAG}, false for {@link SequenceSharding#CONTIGUOUS}
     * @return the rank's shard
     */
    public static NDArray shard(NDArray x, int seqAxis, int rank, int world, boolean zigzag) {
        return shard(x, seqAxis, rank, world, zigzag ? SequenceSharding.ZIGZAG : SequenceSharding.CONTIGUOUS);
    }

    /**
     * Puts every rank's shard back into the full sequence.
     *
     * @param shards the shards, index = rank, equal except along seqAxis
     * @param seqAxis the sequence axis
     * @param sharding the layout they were cut with
     * @return the full tensor, owned by {@code shards[0]}'s manager
     */
    public static NDArray unshard(NDArray[] shards, int seqAxis, SequenceSharding sharding) {
        Objects.requireNonNull(sharding, "sharding");
        if (shards.length == 0) {
            throw new IllegalArgumentException("unshard needs at least one shard");
        }
        int axis = axis(shards[0], seqAxis);
        long[] lengths = new long[shards.length];
        for (int r = 0; r < shards.length; r++) {
            lengths[r] = shards[r].getShape().get(axis);
        }
        List<List<SequenceSharding.Piece>> layout = sharding.layout("gathered", lengths);
        try (OpScope scope = new OpScope()) {
            NDArray out = cat(naturalOrder(shards, axis, layout), axis);
            return scope.ret(out);
        }
    }

    /**
     * All-gathers the shards of the group and puts them back into the full sequence (every rank gets it).
     *
     * @param shard this rank's shard
     * @param seqAxis the sequence axis
     * @param group the group (NCCL needs equal shard shapes)
     * @param sharding the layout the shards follow
     * @return the full tensor, owned by shard's manager
     */
    public static NDArray gather(NDArray shard, int seqAxis, ProcessGroup group, SequenceSharding sharding) {
        NDArray[] all = group.allGather(shard);
        try {
            return unshard(all, seqAxis, sharding);
        } finally {
            for (NDArray a : all) {
                a.close();
            }
        }
    }

    // The non-empty pieces of every rank, ordered by global position (views, in the current scope).
    static NDList naturalOrder(NDArray[] shards, int axis, List<List<SequenceSharding.Piece>> layout) {
        List<long[]> refs = new ArrayList<>(); // {globalStart, rank, localStart, length}
        for (int r = 0; r < layout.size(); r++) {
            for (SequenceSharding.Piece p : layout.get(r)) {
                if (p.length() > 0) {
                    refs.add(new long[] {p.globalStart(), r, p.localStart(), p.length()});
                }
            }
        }
        refs.sort((a, b) -> Long.compare(a[0], b[0]));
        NDList parts = new NDList();
        for (long[] ref : refs) {
            parts.add(slice(shards[(int) ref[1]], axis, ref[2], ref[3]));
        }
        if (parts.isEmpty()) {
            parts.add(slice(shards[0], axis, 0, 0));
        }
        return parts;
    }

    static NDArray slice(NDArray x, int axis, long start, long length) {
        if (start == 0 && length == x.getShape().get(axis)) {
            return x;
        }
        return x.get(new NDIndex().addAllDim(axis).addSliceDim(start, start + length));
    }

    // Concatenation that always returns a new array (also for one part).
    static NDArray cat(NDList parts, int axis) {
        return parts.size() == 1 ? parts.get(0).duplicate() : NDArrays.concat(parts, axis);
    }

    static int axis(NDArray x, int axis) {
        int rank = x.getShape().dimension();
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) {
            throw new IllegalArgumentException("seqAxis " + axis + " is not an axis of shape " + x.getShape()
                    + "; allowed: " + (-rank) + ".." + (rank - 1));
        }
        return a;
    }
}
