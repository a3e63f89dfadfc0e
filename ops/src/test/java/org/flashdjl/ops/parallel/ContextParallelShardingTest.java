package org.flashdjl.ops.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;

import java.util.List;
import org.flashdjl.ops.parallel.group.Ranks;

/** Shard and gather in the contiguous and zigzag layouts, odd lengths and shards shorter than the world. */
class ContextParallelShardingTest {

    @Test
    void zigzagRankHoldsChunksRAndMirror() {
        assertArrayEquals(new long[] {0, 3, 5, 7, 9, 11, 13, 15, 17}, SequenceSharding.chunkBounds(17, 8));
        List<SequenceSharding.Piece> p = SequenceSharding.ZIGZAG.pieces(17, 1, 4);
        assertEquals(List.of(new SequenceSharding.Piece(0, 3, 2), new SequenceSharding.Piece(2, 13, 2)), p);
        assertEquals(List.of(new SequenceSharding.Piece(0, 0, 3), new SequenceSharding.Piece(3, 15, 2)),
                SequenceSharding.ZIGZAG.pieces(17, 0, 4));
        assertEquals(List.of(new SequenceSharding.Piece(0, 5, 4)), SequenceSharding.CONTIGUOUS.pieces(17, 1, 4));
        assertEquals(5, SequenceSharding.ZIGZAG.localLength(17, 0, 4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SequenceSharding.ZIGZAG.pieces(17, 4, 4));
        assertEquals("rank 4 is outside the world of 4 ranks; allowed: 0..3", e.getMessage());
    }

    @Test
    void shardThenUnshardIsTheIdentity() {
        try (NDManager m = NDManager.newBaseManager()) {
            for (long len : new long[] {1, 5, 8, 17, 33}) {
                NDArray x = m.arange(0f, 2f * 3 * len).reshape(2, len, 3); // seq axis 1
                for (int world = 1; world <= 4; world++) {
                    for (SequenceSharding s : SequenceSharding.values()) {
                        NDArray[] shards = new NDArray[world];
                        long total = 0;
                        for (int r = 0; r < world; r++) {
                            shards[r] = ContextParallel.shard(x, 1, r, world, s);
                            assertEquals(s.localLength(len, r, world), shards[r].getShape().get(1));
                            total += shards[r].getShape().get(1);
                        }
                        assertEquals(len, total);
                        NDArray back = ContextParallel.unshard(shards, -2, s);
                        assertEquals(x, back, s + " world " + world + " len " + len);
                    }
                }
            }
        }
    }

    @Test
    void zigzagShardHoldsTheRightTokens() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.arange(0f, 16f).reshape(1, 1, 16, 1); // bhsd, seq axis 2
            NDArray s1 = ContextParallel.shard(x, 2, 1, 4, true); // chunks 1 and 6 of 8, two tokens each
            assertArrayEquals(new float[] {2, 3, 12, 13}, s1.toFloatArray());
            NDArray c1 = ContextParallel.shard(x, 2, 1, 4, false);
            assertArrayEquals(new float[] {4, 5, 6, 7}, c1.toFloatArray());
        }
    }

    @Test
    void gatherOverTheGroupRebuildsTheSequence() throws Exception {
        for (SequenceSharding s : SequenceSharding.values()) {
            List<float[]> got = Ranks.run(3, (g, m) -> {
                NDArray x = m.arange(0f, 19f * 2).reshape(19, 2);
                NDArray shard = ContextParallel.shard(x, 0, g.rank(), g.size(), s);
                NDArray full = ContextParallel.gather(shard, 0, g, s);
                assertEquals(new Shape(19, 2), full.getShape());
                return full.toFloatArray();
            });
            for (float[] f : got) {
                for (int i = 0; i < f.length; i++) {
                    assertEquals(i, f[i], 0f);
                }
            }
        }
    }

    @Test
    void wrongZigzagLengthsAreExplained() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SequenceSharding.ZIGZAG.layout("query", new long[] {4, 5, 4, 4}));
        assertTrue(e.getMessage().startsWith("query shard of rank 0 holds 4 tokens, but the zigzag sharding of 17 "
                + "tokens over 4 ranks gives it 5 (chunks 0 and 7 of 8)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> SequenceSharding.ZIGZAG.layout("key", new long[] {4, 4, 4, 4, 1}));
        assertTrue(e.getMessage().contains("key shard of rank 0 holds 4 tokens, but the zigzag sharding of 17 tokens"
                + " over 5 ranks gives it 3"), e.getMessage());
        // contiguous takes any lengths
        assertEquals(4, SequenceSharding.CONTIGUOUS.layout("query", new long[] {1, 7, 0, 9}).size());
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.zeros(new Shape(2, 3));
            e = assertThrows(IllegalArgumentException.class, () -> ContextParallel.shard(x, 2, 0, 1, true));
            assertEquals("seqAxis 2 is not an axis of shape (2, 3); allowed: -2..1", e.getMessage());
        }
    }
}
