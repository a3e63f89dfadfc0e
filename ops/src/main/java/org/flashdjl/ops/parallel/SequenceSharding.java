package org.flashdjl.ops.parallel;

import org.flashdjl.ops.Checks;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * How a sequence of {@code total} tokens is split over {@code world} ranks.
 *
 * <p>The sequence is cut into equal chunks (the first {@code total % chunks} chunks one token longer):
 *
 * <ul>
 *   <li>{@link #CONTIGUOUS}: {@code world} chunks, rank r holds chunk r;
 *   <li>{@link #ZIGZAG}: {@code 2 * world} chunks, rank r holds chunks {@code r} and {@code 2 world - 1 - r},
 *       concatenated in that order. Under a causal mask every rank then has the same amount of visible
 *       (query, key) pairs, so ring attention keeps all ranks equally busy.
 * </ul>
 */
public enum SequenceSharding {
    /** Rank r holds the r-th of {@code world} contiguous chunks. */
    CONTIGUOUS,
    /** Rank r holds chunks r and {@code 2 world - 1 - r} of {@code 2 world}. */
    ZIGZAG;

    /**
     * One contiguous run of a rank's shard: {@code length} tokens at {@code localStart} in the shard, which are
     * tokens {@code globalStart ..} of the full sequence.
     *
     * @param localStart offset in the rank's shard
     * @param globalStart offset in the full sequence
     * @param length number of tokens
     */
    public record Piece(long localStart, long globalStart, long length) {}

    /**
     * Returns the number of chunks the sequence is cut into.
     *
     * @param world the number of ranks
     * @return {@code world} or {@code 2 * world}
     */
    public int chunkCount(int world) {
        return this == ZIGZAG ? 2 * world : world;
    }

    /**
     * Returns the chunk indices a rank holds, in shard order.
     *
     * @param rank the rank
     * @param world the number of ranks
     * @return {@code {rank}} or {@code {rank, 2 world - 1 - rank}}
     */
    public int[] chunksOf(int rank, int world) {
        checkRank(rank, world);
        return this == ZIGZAG ? new int[] {rank, 2 * world - 1 - rank} : new int[] {rank};
    }

    /**
     * Returns where each chunk starts: {@code n + 1} offsets, chunk i being {@code [b[i], b[i + 1])}; the first
     * {@code total % n} chunks are one token longer.
     *
     * @param total the sequence length
     * @param n the number of chunks
     * @return the boundaries
     */
    public static long[] chunkBounds(long total, int n) {
        Checks.checkAtLeast("total", total, 0, "sequence length");
        Checks.checkAtLeast("chunks", n, 1, "");
        long base = total / n;
        long rem = total % n;
        long[] b = new long[n + 1];
        for (int i = 0; i < n; i++) {
            b[i + 1] = b[i] + base + (i < rem ? 1 : 0);
        }
        return b;
    }

    /**
     * Returns the pieces of a rank's shard of a sequence.
     *
     * @param total the full sequence length
     * @param rank the rank
     * @param world the number of ranks
     * @return the rank's pieces in shard order (empty pieces included)
     */
    public List<Piece> pieces(long total, int rank, int world) {
        long[] b = chunkBounds(total, chunkCount(world));
        List<Piece> pieces = new ArrayList<>(2);
        long local = 0;
        for (int c : chunksOf(rank, world)) {
            long len = b[c + 1] - b[c];
            pieces.add(new Piece(local, b[c], len));
            local += len;
        }
        return Collections.unmodifiableList(pieces);
    }

    /**
     * Returns the length of a rank's shard.
     *
     * @param total the full sequence length
     * @param rank the rank
     * @param world the number of ranks
     * @return the number of tokens the rank holds
     */
    public long localLength(long total, int rank, int world) {
        return pieces(total, rank, world).stream().mapToLong(Piece::length).sum();
    }

    /**
     * Returns the pieces of every rank given the lengths the ranks actually hold, checking that they follow this
     * sharding. {@link #CONTIGUOUS} accepts any lengths (rank r's shard follows rank r - 1's); {@link #ZIGZAG}
     * needs exactly {@link #localLength} tokens per rank.
     *
     * @param what the tensor's role for messages, e.g. {@code "query"}
     * @param lengths the shard length of every rank
     * @return per rank, its pieces
     * @throws IllegalArgumentException naming the rank, its length and the expected one
     */
    public List<List<Piece>> layout(String what, long[] lengths) {
        int world = lengths.length;
        long total = 0;
        for (long l : lengths) {
            total += l;
        }
        List<List<Piece>> layout = new ArrayList<>(world);
        if (this == CONTIGUOUS) {
            long start = 0;
            for (long l : lengths) {
                layout.add(List.of(new Piece(0, start, l)));
                start += l;
            }
            return layout;
        }
        for (int r = 0; r < world; r++) {
            List<Piece> p = pieces(total, r, world);
            long expected = p.stream().mapToLong(Piece::length).sum();
            if (lengths[r] != expected) {
                throw new IllegalArgumentException(what + " shard of rank " + r + " holds " + lengths[r]
                        + " tokens, but the zigzag sharding of " + total + " tokens over " + world
                        + " ranks gives it " + expected + " (chunks " + chunksOf(r, world)[0] + " and "
                        + chunksOf(r, world)[1] + " of " + 2 * world + "); shard with ContextParallel.shard(x, seqAxis,"
                        + " rank, world, SequenceSharding.ZIGZAG) or use SequenceSharding.CONTIGUOUS. All lengths: "
                        + java.util.Arrays.toString(lengths));
            }
            layout.add(p);
        }
        return layout;
    }

    private static void checkRank(int rank, int world) {
        Checks.checkAtLeast("world", world, 1, "number of ranks");
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " is outside the world of " + world
                    + " ranks; allowed: 0.." + (world - 1));
        }
    }
}
