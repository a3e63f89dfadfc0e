package org.flashdjl.ops.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * The device ring's flash calls ({@link DeviceRingAttention#plan}): over all steps, the plain, bottom-right causal
 * and positioned calls must cover every visible (query, key) pair of the full problem exactly once and no hidden
 * pair, for every rank, world size, odd length, sharding and mask (causal, windows, sinks, ALiBi, Lq != Lk).
 */
class DeviceRingPlanTest {

    @Test
    void callsCoverTheMaskExactlyOnce() {
        AttentionSpec[] specs = {AttentionSpec.builder().optCausal(true).build(), AttentionSpec.builder().build(),
            AttentionSpec.builder().optCausal(true).optWindowBounds(5, 0).optSinkTokens(2).build(),
            AttentionSpec.builder().optWindowBounds(3, 4).build(),
            AttentionSpec.builder().optAlibiSlopes(new float[] {0.5f}).build()};
        for (AttentionSpec spec : specs) {
            for (SequenceSharding sharding : SequenceSharding.values()) {
                for (int world = 2; world <= 4; world++) {
                    for (int total : new int[] {1, 3, 8, 17, 33, 40}) {
                        check(spec, sharding, world, total, total);
                    }
                }
            }
        }
    }

    @Test
    void offDiagonalCausalBlocksRunAtTheirPositions() {
        // Lq != Lk: the causal diagonal is shifted, so a block can be partial without sharing its end position.
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
        for (SequenceSharding sharding : SequenceSharding.values()) {
            check(spec, sharding, 2, 6, 10);
            check(spec, sharding, 3, 9, 21);
        }
        RingSchedule s = RingSchedule.create(spec, new long[] {3, 3}, new long[] {5, 5}, SequenceSharding.CONTIGUOUS);
        boolean positioned = false;
        for (int r = 0; r < 2; r++) {
            for (int step = 0; step < 2; step++) {
                for (DeviceRingAttention.BlockCall c : DeviceRingAttention.plan(s.blocks(r, step), spec)) {
                    positioned |= c.positioned();
                }
            }
        }
        assertTrue(positioned, "an off-diagonal partial block becomes a positioned call");
    }

    private static void check(AttentionSpec spec, SequenceSharding sharding, int world, int totalQ, int totalK) {
        long[] lq = new long[world];
        long[] lk = new long[world];
        for (int r = 0; r < world; r++) {
            lq[r] = sharding.localLength(totalQ, r, world);
            lk[r] = sharding.localLength(totalK, r, world);
        }
        RingSchedule schedule = RingSchedule.create(spec, lq, lk, sharding);
        String what = spec + " " + sharding + " world " + world + " Lq " + totalQ + " Lk " + totalK;
        for (int rank = 0; rank < world; rank++) {
            List<SequenceSharding.Piece> qPieces = sharding.pieces(totalQ, rank, world);
            int[][] seen = new int[(int) lq[rank]][totalK];
            for (int step = 0; step < world; step++) {
                int src = schedule.source(rank, step);
                List<SequenceSharding.Piece> kPieces = sharding.pieces(totalK, src, world);
                List<DeviceRingAttention.BlockCall> calls = DeviceRingAttention.plan(schedule.blocks(rank, step), spec);
                boolean causalOnly = spec.isCausal() && spec.getWindowLeft() < 0 && spec.getWindowRight() < 0;
                if (causalOnly && totalQ == totalK && sharding == SequenceSharding.ZIGZAG
                        && totalQ % (2 * world) == 0) {
                    assertTrue(calls.size() <= (step == 0 ? 2 : 1), what + " rank " + rank + " step " + step
                            + ": " + calls);
                }
                for (DeviceRingAttention.BlockCall c : calls) {
                    long shift = c.keyLength() - c.queryLength();
                    for (long i = 0; i < c.queryLength(); i++) {
                        for (long j = 0; j < c.keyLength(); j++) {
                            boolean visible;
                            if (c.positioned()) {
                                visible = MaskRule.isVisible(spec, c.queryPosition() + i, c.keyPosition() + j);
                                assertEquals(global(qPieces, c.queryStart() + i) + totalK - totalQ,
                                        c.queryPosition() + i, what);
                                assertEquals(global(kPieces, c.keyStart() + j), c.keyPosition() + j, what);
                            } else {
                                visible = !(c.causal() && j > i + shift);
                            }
                            if (visible) {
                                seen[(int) (c.queryStart() + i)][(int) global(kPieces, c.keyStart() + j)]++;
                            }
                        }
                    }
                }
            }
            for (int row = 0; row < lq[rank]; row++) {
                long pos = global(qPieces, row) + totalK - totalQ; // bottom-right over the full lengths
                for (int key = 0; key < totalK; key++) {
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
}
