package org.flashdjl.ops.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * The device ring's flash calls ({@link DeviceRingAttention#plan}): over all steps, the plain and bottom-right
 * causal calls must cover every visible (query, key) pair of the full problem exactly once and no hidden pair, for
 * every rank, world size, odd length and sharding.
 */
class DeviceRingPlanTest {

    @Test
    void callsCoverTheMaskExactlyOnce() {
        for (boolean causal : new boolean[] {true, false}) {
            for (SequenceSharding sharding : SequenceSharding.values()) {
                for (int world = 2; world <= 4; world++) {
                    for (int total : new int[] {1, 3, 8, 17, 33, 40}) {
                        check(causal, sharding, world, total);
                    }
                }
            }
        }
    }

    private static void check(boolean causal, SequenceSharding sharding, int world, int total) {
        AttentionSpec spec = AttentionSpec.builder().optCausal(causal).build();
        long[] lens = new long[world];
        for (int r = 0; r < world; r++) {
            lens[r] = sharding.localLength(total, r, world);
        }
        RingSchedule schedule = RingSchedule.create(spec, lens, lens, sharding);
        String what = (causal ? "causal " : "full ") + sharding + " world " + world + " L " + total;
        for (int rank = 0; rank < world; rank++) {
            List<SequenceSharding.Piece> qPieces = sharding.pieces(total, rank, world);
            int[][] seen = new int[(int) lens[rank]][total];
            for (int step = 0; step < world; step++) {
                int src = schedule.source(rank, step);
                List<SequenceSharding.Piece> kPieces = sharding.pieces(total, src, world);
                List<DeviceRingAttention.BlockCall> calls = DeviceRingAttention.plan(schedule.blocks(rank, step), spec);
                if (causal && sharding == SequenceSharding.ZIGZAG && total % (2 * world) == 0) {
                    assertTrue(calls.size() <= (step == 0 ? 2 : 1), what + " rank " + rank + " step " + step
                            + ": " + calls);
                }
                for (DeviceRingAttention.BlockCall c : calls) {
                    long shift = c.keyLength() - c.queryLength();
                    for (long i = 0; i < c.queryLength(); i++) {
                        for (long j = 0; j < c.keyLength(); j++) {
                            if (c.causal() && j > i + shift) {
                                continue;
                            }
                            long row = c.queryStart() + i;
                            seen[(int) row][(int) global(kPieces, c.keyStart() + j)]++;
                        }
                    }
                }
            }
            for (int row = 0; row < lens[rank]; row++) {
                long pos = global(qPieces, row);
                for (int key = 0; key < total; key++) {
                    int expected = MaskRule.isVisible(spec, pos, key) ? 1 : 0;
                    assertEquals(expected, seen[row][key], what + " rank " + rank + " query " + pos + " key " + key);
                }
            }
        }
    }

    private static long global(List<SequenceSharding.Piece> pieces, long local) {
        for (SequenceSharding.Piece p : pieces) {
            if (local >= p.localStart() && local < p.localStart() + p.length()) {
                return p.globalStart() + local - p.localStart();
            }
        }
        throw new AssertionError("local index " + local + " outside " + pieces);
    }

    @Test
    void positionDependentSpecsAreRefusedByName() {
        assertNull(DeviceRingAttention.unsupportedReason(AttentionSpec.builder().optCausal(true).optSoftcap(30f)
                .build()));
        String why = DeviceRingAttention.unsupportedReason(AttentionSpec.builder().optCausal(true).optWindowBounds(64, 0)
                .optSinkTokens(4).optAlibiSlopes(new float[] {0.5f}).build());
        assertNotNull(why);
        assertTrue(why.contains("sliding window") && why.contains("attention sinks") && why.contains("ALiBi")
                && why.contains("ULYSSES"), why);
    }

    @Test
    void offDiagonalPartialBlocksAreRefused() {
        // Lq != Lk: the causal diagonal is shifted, so a block can be partial without sharing its end position.
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
        RingSchedule s = RingSchedule.create(spec, new long[] {3, 3}, new long[] {5, 5}, SequenceSharding.CONTIGUOUS);
        assertThrows(UnsupportedOperationException.class, () -> {
            for (int r = 0; r < 2; r++) {
                for (int step = 0; step < 2; step++) {
                    DeviceRingAttention.plan(s.blocks(r, step), spec);
                }
            }
        });
    }
}
