package org.flashdjl.ops.parallel;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * The plan of ring attention, independent of tensors and of the process group: which key/value shard a rank
 * holds at each step, and which (query piece, key piece) blocks it attends, at which positions of the full
 * sequence. The NDArray ring ({@link ContextParallelAttention}) runs it; a device ring on raw buffers can run the
 * same plan.
 *
 * <p>At step {@code s} rank {@code r} holds the key/value shard that rank {@code (r - s) mod world} started with.
 * Positions follow the sharding ({@link SequenceSharding#pieces}): query piece i sits at
 * {@code Lk - Lq + globalStart} (bottom-right alignment of the full problem), key piece j at its
 * {@code globalStart}. Blocks the mask hides entirely ({@link MaskRule.Coverage#NONE}) are left out. When the spec
 * has neither a mask nor ALiBi, positions do not matter and each shard is one piece.
 */
public final class RingSchedule {

    /**
     * One attention call of a step: a query piece of this rank against a key piece of the travelling shard.
     *
     * @param queryPiece index of the query piece in {@link #queryPieces(int)}
     * @param queryLocalStart first query row in this rank's query shard
     * @param queryPosition position of that row in the full sequence (mask rule)
     * @param queryLength rows
     * @param keyLocalStart first key in the travelling key shard
     * @param keyPosition index of that key in the full sequence
     * @param keyLength keys
     * @param coverage {@link MaskRule.Coverage#FULL} or {@link MaskRule.Coverage#PARTIAL}
     */
    public record Block(int queryPiece, long queryLocalStart, long queryPosition, long queryLength,
            long keyLocalStart, long keyPosition, long keyLength, MaskRule.Coverage coverage) {}

    private final AttentionSpec spec;
    private final long[] queryLengths;
    private final long[] keyLengths;
    private final List<List<SequenceSharding.Piece>> queryLayout;
    private final List<List<SequenceSharding.Piece>> keyLayout;
    private final long queryOffset;

    private RingSchedule(AttentionSpec spec, long[] queryLengths, long[] keyLengths, SequenceSharding sharding) {
        this.spec = spec;
        this.queryLengths = queryLengths.clone();
        this.keyLengths = keyLengths.clone();
        long lq = 0;
        long lk = 0;
        for (int r = 0; r < queryLengths.length; r++) {
            lq += queryLengths[r];
            lk += keyLengths[r];
        }
        this.queryOffset = lk - lq;
        if (!spec.hasMask() && !spec.hasAlibi()) {
            this.queryLayout = whole(queryLengths);
            this.keyLayout = whole(keyLengths);
        } else {
            this.queryLayout = sharding.layout("query", this.queryLengths);
            this.keyLayout = sharding.layout("key", this.keyLengths);
        }
    }

    /**
     * Plans a ring.
     *
     * @param spec the attention spec (mask, ALiBi)
     * @param queryLengths query shard length of every rank
     * @param keyLengths key/value shard length of every rank
     * @param sharding how the shards were cut
     * @return the schedule
     * @throws IllegalArgumentException if the lengths do not follow the sharding
     */
    public static RingSchedule create(AttentionSpec spec, long[] queryLengths, long[] keyLengths,
            SequenceSharding sharding) {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(sharding, "sharding");
        if (queryLengths.length != keyLengths.length || queryLengths.length == 0) {
            throw new IllegalArgumentException("queryLengths (" + queryLengths.length + ") and keyLengths ("
                    + keyLengths.length + ") need one entry per rank");
        }
        return new RingSchedule(spec, queryLengths, keyLengths, sharding);
    }

    private static List<List<SequenceSharding.Piece>> whole(long[] lengths) {
        List<List<SequenceSharding.Piece>> layout = new ArrayList<>();
        for (long l : lengths) {
            layout.add(List.of(new SequenceSharding.Piece(0, 0, l)));
        }
        return layout;
    }

    /**
     * Returns the number of ranks (and steps).
     *
     * @return the world size
     */
    public int world() {
        return queryLengths.length;
    }

    /**
     * Returns the key/value shard length of a rank.
     *
     * @param rank the rank
     * @return its key count
     */
    public long keyLength(int rank) {
        return keyLengths[rank];
    }

    /**
     * Returns the query pieces of a rank, in shard order; outputs are merged per piece.
     *
     * @param rank the rank
     * @return the pieces
     */
    public List<SequenceSharding.Piece> queryPieces(int rank) {
        return Collections.unmodifiableList(queryLayout.get(rank));
    }

    /**
     * Returns which rank's key/value shard a rank holds at a step.
     *
     * @param rank the rank
     * @param step the step, {@code 0 <= step < world()}
     * @return {@code (rank - step) mod world}
     */
    public int source(int rank, int step) {
        return Math.floorMod(rank - step, world());
    }

    /**
     * Returns the blocks a rank attends at a step (hidden blocks left out).
     *
     * @param rank the rank
     * @param step the step
     * @return the blocks, query piece by query piece
     */
    public List<Block> blocks(int rank, int step) {
        List<Block> blocks = new ArrayList<>();
        List<SequenceSharding.Piece> qs = queryLayout.get(rank);
        List<SequenceSharding.Piece> ks = keyLayout.get(source(rank, step));
        for (int i = 0; i < qs.size(); i++) {
            SequenceSharding.Piece q = qs.get(i);
            if (q.length() == 0) {
                continue;
            }
            long qPos = queryOffset + q.globalStart();
            for (SequenceSharding.Piece k : ks) {
                if (k.length() == 0) {
                    continue;
                }
                MaskRule.Coverage c = MaskRule.coverage(spec, qPos, q.length(), k.globalStart(), k.length());
                if (c != MaskRule.Coverage.NONE) {
                    blocks.add(new Block(i, q.localStart(), qPos, q.length(), k.localStart(), k.globalStart(),
                            k.length(), c));
                }
            }
        }
        return blocks;
    }

    /**
     * Returns the score-matrix area (query rows x keys) a rank computes over the whole ring: the measure of its
     * work, equal across ranks under the zigzag sharding with a causal mask.
     *
     * @param rank the rank
     * @return the sum of {@code queryLength * keyLength} over its blocks
     */
    public long computedArea(int rank) {
        long area = 0;
        for (int s = 0; s < world(); s++) {
            for (Block b : blocks(rank, s)) {
                area += b.queryLength() * b.keyLength();
            }
        }
        return area;
    }
}
