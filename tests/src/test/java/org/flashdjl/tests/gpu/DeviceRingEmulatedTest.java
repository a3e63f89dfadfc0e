package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.parallel.DeviceRingAttention;
import org.flashdjl.ops.parallel.RingSchedule;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The device ring's flash calls on the CPU: every rank's steps planned by {@link DeviceRingAttention#plan} and built
 * by {@link DeviceRingAttention.BlockCall#toFlash} (the production path of {@code DeviceRingAttention.forward}, at
 * global positions for windows, sinks, ALiBi and off-diagonal causal blocks), run through {@link KernelEmulator} on
 * host memory, their block states merged by LSE, must give every rank's rows of attention over the whole sequence
 * (float64 reference). Only the NCCL transfers are left out: each step reads the source rank's shard directly.
 */
class DeviceRingEmulatedTest {

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        String[] options = {"causal+window+sinks", "alibi", "all", "window", "causal"};
        for (String option : options) {
            for (SequenceSharding sharding : SequenceSharding.values()) {
                cases.add(Arguments.of(option, sharding, 2, 40, 40));
                cases.add(Arguments.of(option, sharding, 3, 33, 33));
            }
        }
        // Lq != Lk: the causal diagonal is shifted, blocks are partial off the diagonal
        cases.add(Arguments.of("causal", SequenceSharding.CONTIGUOUS, 2, 6, 10));
        cases.add(Arguments.of("causal", SequenceSharding.ZIGZAG, 3, 9, 21));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} world {2} Lq {3} Lk {4}")
    @MethodSource("cases")
    void ringOfEmulatedFlashCallsEqualsFullAttention(String option, SequenceSharding sharding, int world, int totalQ,
            int totalK) {
        long seed = 77L * totalQ + 13L * totalK + 7L * world + option.hashCode() + sharding.ordinal();
        Random rnd = new Random(seed);
        DeviceDataType type = DeviceDataType.FP16;
        int hq = 4;
        int hkv = 2;
        int d = 64;
        Reference.Options ro = new Reference.Options();
        AttentionSpec spec = GpuCheck.spec(option, hq, QkvLayout.BSHD, ro, d);
        float[] q = HostFloats.roundInPlace(type, Reference.randn(rnd, hq * totalQ * d)); // bhsd, B = 1
        float[] k = HostFloats.roundInPlace(type, Reference.randn(rnd, hkv * totalK * d));
        float[] v = HostFloats.roundInPlace(type, Reference.randn(rnd, hkv * totalK * d));
        Reference.Result ref = Reference.attention(q, k, v, 1, hq, hkv, totalQ, totalK, d, d, ro);
        float[] qs = Reference.bhsdToBshd(q, 1, hq, totalQ, d); // [L, H, D]
        float[] ks = Reference.bhsdToBshd(k, 1, hkv, totalK, d);
        float[] vs = Reference.bhsdToBshd(v, 1, hkv, totalK, d);
        long[] lq = new long[world];
        long[] lk = new long[world];
        for (int r = 0; r < world; r++) {
            lq[r] = sharding.localLength(totalQ, r, world);
            lk[r] = sharding.localLength(totalK, r, world);
        }
        RingSchedule schedule = RingSchedule.create(spec, lq, lk, sharding);
        TestMemory mem = TestMemory.EMULATOR;
        double worst = 0;
        for (int rank = 0; rank < world; rank++) {
            List<SequenceSharding.Piece> qPieces = sharding.pieces(totalQ, rank, world);
            int rows = (int) lq[rank];
            double[] m = new double[rows * hq]; // running LSE per (row, head), natural log
            double[][] acc = new double[rows * hq][d];
            java.util.Arrays.fill(m, Double.NEGATIVE_INFINITY);
            try (TestMemory.Buf qb = GpuCheck.upload(mem, type, shard(qs, qPieces, hq, d))) {
                for (int step = 0; step < world; step++) {
                    int src = schedule.source(rank, step);
                    List<SequenceSharding.Piece> kPieces = sharding.pieces(totalK, src, world);
                    try (TestMemory.Buf kb = GpuCheck.upload(mem, type, shard(ks, kPieces, hkv, d));
                            TestMemory.Buf vb = GpuCheck.upload(mem, type, shard(vs, kPieces, hkv, d))) {
                        for (DeviceRingAttention.BlockCall c : DeviceRingAttention.plan(schedule.blocks(rank, step),
                                spec)) {
                            int n = (int) c.queryLength();
                            try (TestMemory.Buf ob = mem.allocate(2L * n * hq * d);
                                    TestMemory.Buf lb = mem.allocate(4L * n * hq)) {
                                mem.launch(c.toFlash(qb.view(type, 1, rows, hq, d), kb.view(type, 1, lk[src], hkv, d),
                                        vb.view(type, 1, lk[src], hkv, d), ob.view(type, 1, n, hq, d),
                                        lb.view(DeviceDataType.FP32, 1, n, hq), spec));
                                short[] outBits = new short[n * hq * d];
                                ob.download(outBits);
                                float[] out = HostFloats.fromBits(type, outBits);
                                int[] lseBits = new int[n * hq];
                                lb.download(lseBits);
                                for (int i = 0; i < n; i++) {
                                    for (int h = 0; h < hq; h++) {
                                        int row = (int) c.queryStart() + i;
                                        merge(m, acc, row * hq + h, Float.intBitsToFloat(lseBits[i * hq + h]), out,
                                                (i * hq + h) * d, d);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (int row = 0; row < rows; row++) {
                int g = (int) global(qPieces, row);
                for (int h = 0; h < hq; h++) {
                    double lseRef = ref.lse[h * totalQ + g];
                    double lse = m[row * hq + h];
                    assertTrue(lseRef == Double.NEGATIVE_INFINITY ? lse == lseRef : Math.abs(lse - lseRef) <= 1e-3,
                            "rank " + rank + " query " + g + " head " + h + ": LSE " + lse + " vs " + lseRef
                                    + "; seed " + seed);
                    for (int x = 0; x < d; x++) {
                        worst = Math.max(worst, Math.abs(acc[row * hq + h][x] - ref.out[(h * totalQ + g) * d + x]));
                    }
                }
            }
        }
        assertTrue(worst <= 2e-3, option + " " + sharding + ": max|ring - ref| = " + worst + "; seed " + seed);
    }

    // (m, acc) <- merge((m, acc), (s, o)): natural-log LSE, two -inf states stay (-inf, 0)
    private static void merge(double[] m, double[][] acc, int at, double s, float[] o, int off, int d) {
        if (s == Double.NEGATIVE_INFINITY) {
            return;
        }
        double mx = Math.max(m[at], s);
        double wa = m[at] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(m[at] - mx);
        double wb = Math.exp(s - mx);
        double sum = wa + wb;
        for (int x = 0; x < d; x++) {
            acc[at][x] = (acc[at][x] * wa + o[off + x] * wb) / sum;
        }
        m[at] = mx + Math.log(sum);
    }

    // A rank's shard of a [L, H, D] sequence: its pieces in local order.
    private static float[] shard(float[] full, List<SequenceSharding.Piece> pieces, int h, int d) {
        long n = 0;
        for (SequenceSharding.Piece p : pieces) {
            n += p.length();
        }
        float[] s = new float[(int) n * h * d];
        for (SequenceSharding.Piece p : pieces) {
            System.arraycopy(full, (int) p.globalStart() * h * d, s, (int) p.localStart() * h * d,
                    (int) p.length() * h * d);
        }
        return s;
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
