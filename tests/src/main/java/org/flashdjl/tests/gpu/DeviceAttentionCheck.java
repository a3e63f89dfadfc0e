package org.flashdjl.tests.gpu;

import jcuda.Pointer;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.parallel.ContextParallelAttention;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;
import org.flashdjl.ops.parallel.SequenceSharding;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Ring and Ulysses attention on the GPUs of an NCCL group against single-GPU flash attention of the full sequence
 * (and, on small cases, against a float64 reference): every rank generates the same full q, k, v (one seed), runs
 * the flash kernel on the whole sequence on its own GPU, runs the context-parallel forward on its shards, and
 * compares its rows. Outputs are poisoned with NaN first (every element must be written).
 *
 * <p>A case passes when {@code max|cp - single| <= 1e-3} (fp16) / {@code 1e-2} (bf16) and the LSEs agree within
 * 1e-3; with a float64 reference also when {@code max|cp - ref| <= 2 max|single - ref| + 1e-5}. Rank 0 prints one
 * line per case with the worst numbers over the ranks.
 */
public final class DeviceAttentionCheck {

    /**
     * One case; {@code options} adds position-dependent options to the spec ({@code "window+sinks"}: a causal
     * sliding window of 64 with 4 sinks; {@code "alibi"}: ALiBi slopes), compared with the single-GPU call of the
     * same spec (the float64 reference covers causal/full only).
     */
    record Case(ContextParallelAttention.Method method, boolean causal, DeviceDataType dtype, int hq, int hkv,
            int length, QkvLayout layout, SequenceSharding sharding, boolean fp32Merge, boolean reference,
            String options) {
        Case(ContextParallelAttention.Method method, boolean causal, DeviceDataType dtype, int hq, int hkv,
                int length, QkvLayout layout, SequenceSharding sharding, boolean fp32Merge, boolean reference) {
            this(method, causal, dtype, hq, hkv, length, layout, sharding, fp32Merge, reference, "");
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%-7s %-6s %s Hq/Hkv %2d/%-2d L %5d %s %s%s%s", method,
                    causal ? "causal" : "full", dtype, hq, hkv, length, layout.name().toLowerCase(Locale.ROOT),
                    sharding.name().toLowerCase(Locale.ROOT), fp32Merge ? "" : " fp16-merge",
                    options.isEmpty() ? "" : " " + options);
        }

        AttentionSpec spec() {
            AttentionSpec.Builder b = AttentionSpec.builder().optCausal(causal).optLayout(layout);
            if (options.contains("window")) {
                b.optWindowBounds(64, 0);
            }
            if (options.contains("sinks")) {
                b.optSinkTokens(4);
            }
            if (options.contains("alibi")) {
                float[] slopes = new float[hq];
                for (int h = 0; h < hq; h++) {
                    slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / hq);
                }
                b.optAlibiSlopes(slopes);
            }
            return b.build();
        }
    }

    private static final int D = 128;

    private final NcclProcessGroup group;
    private final int device;

    private DeviceAttentionCheck(NcclProcessGroup group) {
        this.group = group;
        this.device = group.device();
    }

    /**
     * Runs every case on the group.
     *
     * @param group the NCCL group (world 2 or more)
     * @param quick only the small cases
     * @return 0 when every case passed, {@link NcclWorker#EXIT_CHECK_FAILED} otherwise
     */
    public static int run(NcclProcessGroup group, boolean quick) {
        DeviceAttentionCheck c = new DeviceAttentionCheck(group);
        if (group.rank() == 0) {
            System.out.println("comm stream non-blocking: " + group.isCommunicationStreamNonBlocking());
            System.out.println("CP_CHECK | case | max|cp-single| | max|single-ref| | max|cp-ref| | max|dLSE| | verdict");
        }
        int failed = 0;
        int total = 0;
        for (Case k : cases(quick)) {
            total++;
            try {
                if (!c.check(k)) {
                    failed++;
                }
            } catch (RuntimeException e) {
                failed++;
                System.out.println("CP_CHECK rank " + group.rank() + " " + k + " ERROR " + e);
                e.printStackTrace(System.out);
                throw e; // the peer is now out of step: stop both
            }
        }
        if (group.rank() == 0) {
            System.out.println("CP_CHECK summary: " + (total - failed) + "/" + total + " passed");
        }
        return failed == 0 ? 0 : NcclWorker.EXIT_CHECK_FAILED;
    }

    static List<Case> cases(boolean quick) {
        ContextParallelAttention.Method ring = ContextParallelAttention.Method.RING;
        ContextParallelAttention.Method uly = ContextParallelAttention.Method.ULYSSES;
        SequenceSharding zz = SequenceSharding.ZIGZAG;
        List<Case> cases = new ArrayList<>();
        for (DeviceDataType t : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
            for (ContextParallelAttention.Method m : new ContextParallelAttention.Method[] {ring, uly}) {
                cases.add(new Case(m, true, t, 32, 8, 257, QkvLayout.BSHD, zz, true, true));
            }
        }
        cases.add(new Case(ring, false, DeviceDataType.FP16, 16, 16, 131, QkvLayout.BSHD, zz, true, true));
        cases.add(new Case(ring, true, DeviceDataType.FP16, 8, 2, 203, QkvLayout.BHSD, zz, true, true));
        // windows, sinks and ALiBi on the device ring: blocks at their global positions (positioned kernels)
        for (DeviceDataType t : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
            cases.add(new Case(ring, true, t, 16, 4, 1027, QkvLayout.BSHD, zz, true, false, "window+sinks"));
            cases.add(new Case(ring, false, t, 8, 8, 515, QkvLayout.BHSD, SequenceSharding.CONTIGUOUS, true,
                    false, "alibi"));
        }
        cases.add(new Case(ring, true, DeviceDataType.FP16, 8, 2, 1027, QkvLayout.BSHD, zz, false, false,
                "window+sinks+alibi"));
        if (quick) {
            return cases;
        }
        for (DeviceDataType t : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
            for (ContextParallelAttention.Method m : new ContextParallelAttention.Method[] {ring, uly}) {
                for (boolean causal : new boolean[] {true, false}) {
                    for (int[] h : new int[][] {{32, 8}, {16, 16}}) {
                        cases.add(new Case(m, causal, t, h[0], h[1], 4099, QkvLayout.BSHD, zz, true, false));
                    }
                }
            }
        }
        cases.add(new Case(ring, true, DeviceDataType.FP16, 32, 8, 4099, QkvLayout.BSHD, zz, false, false));
        cases.add(new Case(ring, true, DeviceDataType.FP16, 32, 8, 4099, QkvLayout.BSHD, SequenceSharding.CONTIGUOUS,
                true, false));
        cases.add(new Case(ring, true, DeviceDataType.BF16, 16, 16, 1027, QkvLayout.BHSD, zz, true, false));
        cases.add(new Case(uly, true, DeviceDataType.BF16, 16, 16, 1027, QkvLayout.BHSD, zz, true, false));
        cases.add(new Case(ring, true, DeviceDataType.FP16, 32, 8, 16385, QkvLayout.BSHD, zz, true, false));
        cases.add(new Case(uly, true, DeviceDataType.FP16, 32, 8, 16385, QkvLayout.BSHD, zz, true, false));
        return cases;
    }

    private boolean check(Case c) {
        int rank = group.rank();
        int world = group.size();
        int l = c.length();
        long seed = 1234L + 31L * l + 7L * c.hq() + c.hkv() + (c.causal() ? 1 : 0);
        SplittableRandom rnd = new SplittableRandom(seed);
        // host tensors in bshd order [L, H, D] (B = 1), rounded to the dtype
        float[] q = HostFloats.roundInPlace(c.dtype(), gaussian(rnd, (long) l * c.hq() * D));
        float[] k = HostFloats.roundInPlace(c.dtype(), gaussian(rnd, (long) l * c.hkv() * D));
        float[] v = HostFloats.roundInPlace(c.dtype(), gaussian(rnd, (long) l * c.hkv() * D));
        List<SequenceSharding.Piece> pieces = c.sharding().pieces(l, rank, world);
        int local = (int) c.sharding().localLength(l, rank, world);
        AttentionSpec spec = c.spec();
        List<DeviceBuffer> mem = new ArrayList<>();
        try {
            // single GPU, full sequence
            DeviceTensor qf = upload(mem, c, q, l, c.hq());
            DeviceTensor kf = upload(mem, c, k, l, c.hkv());
            DeviceTensor vf = upload(mem, c, v, l, c.hkv());
            DeviceTensor of = alloc(mem, c.dtype(), shape(c.layout(), l, c.hq()));
            DeviceTensor lf = alloc(mem, DeviceDataType.FP32, lseShape(c.layout(), l, c.hq()));
            FlashAttention.builder().setQuery(qf).setKey(kf).setValue(vf).setOutput(of).optLse(lf).setSpec(spec)
                    .build().run();
            // this rank's shards
            DeviceTensor qs = upload(mem, c, shard(q, pieces, c.hq()), local, c.hq());
            DeviceTensor ks = upload(mem, c, shard(k, pieces, c.hkv()), local, c.hkv());
            DeviceTensor vs = upload(mem, c, shard(v, pieces, c.hkv()), local, c.hkv());
            DeviceTensor os = alloc(mem, c.dtype(), shape(c.layout(), local, c.hq()));
            DeviceTensor ls = alloc(mem, DeviceDataType.FP32, lseShape(c.layout(), local, c.hq()));
            poison(mem, os, ls);
            try (ContextParallelAttention cp = ContextParallelAttention.builder().optLayout(c.layout())
                    .optBackend("flash").optMethod(c.method()).optSharding(c.sharding())
                    .optConvertToFp32(c.fp32Merge()).optContextParallelGroup(group).build()) {
                cp.forward(qs, ks, vs, os, ls, spec);
                CudaRuntime.bind(device);
                CudaRuntime.synchronize("context-parallel " + c);
            }
            float[] single = bshdRows(download(mem, of, c.dtype()), c.layout(), l, c.hq());
            float[] singleLse = downloadFloats(mem, lf);
            float[] mine = bshdRows(download(mem, os, c.dtype()), c.layout(), local, c.hq());
            float[] mineLse = downloadFloats(mem, ls);
            double dOut = 0;
            double dLse = 0;
            boolean nan = false;
            int row = 0;
            for (SequenceSharding.Piece p : pieces) {
                for (int t = 0; t < p.length(); t++, row++) {
                    int g = (int) p.globalStart() + t;
                    for (int i = 0; i < c.hq() * D; i++) {
                        float a = mine[row * c.hq() * D + i];
                        nan |= Float.isNaN(a);
                        dOut = Math.max(dOut, Math.abs(a - single[g * c.hq() * D + i]));
                    }
                    for (int h = 0; h < c.hq(); h++) {
                        float a = mineLse[lseIndex(c.layout(), local, c.hq(), row, h)];
                        float b = singleLse[lseIndex(c.layout(), l, c.hq(), g, h)];
                        nan |= Float.isNaN(a);
                        dLse = Math.max(dLse, a == b ? 0 : Math.abs(a - b));
                    }
                }
            }
            double dSingleRef = Double.NaN;
            double dCpRef = Double.NaN;
            if (c.reference()) {
                double[] ref = reference(q, k, v, l, c.hq(), c.hkv(), c.causal(), pieces);
                dSingleRef = 0;
                dCpRef = 0;
                row = 0;
                for (SequenceSharding.Piece p : pieces) {
                    for (int t = 0; t < p.length(); t++, row++) {
                        int g = (int) p.globalStart() + t;
                        for (int i = 0; i < c.hq() * D; i++) {
                            double r = ref[row * c.hq() * D + i];
                            dSingleRef = Math.max(dSingleRef, Math.abs(single[g * c.hq() * D + i] - r));
                            dCpRef = Math.max(dCpRef, Math.abs(mine[row * c.hq() * D + i] - r));
                        }
                    }
                }
            }
            double tol = c.dtype() == DeviceDataType.FP16 ? 1e-3 : 1e-2;
            boolean ok = !nan && dLse <= 1e-3 && (dOut <= tol || (c.reference() && dCpRef <= 2 * dSingleRef + 1e-5));
            // rank 0 reports the worst rank
            long[] all = group.allGatherLongs(Double.doubleToLongBits(dOut), Double.doubleToLongBits(dSingleRef),
                    Double.doubleToLongBits(dCpRef), Double.doubleToLongBits(dLse), ok ? 1 : 0);
            boolean allOk = true;
            double[] worst = new double[4];
            for (int r = 0; r < world; r++) {
                for (int i = 0; i < 4; i++) {
                    double x = Double.longBitsToDouble(all[5 * r + i]);
                    worst[i] = Double.isNaN(x) ? x : Math.max(worst[i], x);
                }
                allOk &= all[5 * r + 4] == 1;
            }
            if (rank == 0) {
                System.out.printf(Locale.ROOT, "CP_CHECK | %s | %.3g | %s | %s | %.3g | %s%n", c, worst[0],
                        Double.isNaN(worst[1]) ? "-" : String.format(Locale.ROOT, "%.3g", worst[1]),
                        Double.isNaN(worst[2]) ? "-" : String.format(Locale.ROOT, "%.3g", worst[2]), worst[3],
                        allOk ? "PASS" : "FAIL" + (nan ? " (NaN: unwritten output)" : ""));
            }
            return allOk;
        } finally {
            CudaRuntime.bind(device);
            CudaRuntime.synchronize("check cleanup");
            for (DeviceBuffer b : mem) {
                b.close();
            }
        }
    }

    private static float[] gaussian(SplittableRandom rnd, long n) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    // Rows of the pieces (bshd [L, H, D] host order) concatenated in shard order.
    private static float[] shard(float[] full, List<SequenceSharding.Piece> pieces, int heads) {
        int row = heads * D;
        long n = 0;
        for (SequenceSharding.Piece p : pieces) {
            n += p.length();
        }
        float[] out = new float[Math.toIntExact(n * row)];
        int at = 0;
        for (SequenceSharding.Piece p : pieces) {
            System.arraycopy(full, (int) p.globalStart() * row, out, at, (int) p.length() * row);
            at += (int) p.length() * row;
        }
        return out;
    }

    // The LSE of an output of shape(layout, len, heads): that shape without D.
    private static long[] lseShape(QkvLayout layout, long len, long heads) {
        return Arrays.copyOf(shape(layout, len, heads), 3);
    }

    private static int lseIndex(QkvLayout layout, int len, int heads, int row, int head) {
        return layout == QkvLayout.BSHD ? row * heads + head : head * len + row;
    }

    private static long[] shape(QkvLayout layout, long len, long heads) {
        return layout == QkvLayout.BSHD ? new long[] {1, len, heads, D} : new long[] {1, heads, len, D};
    }

    private DeviceTensor upload(List<DeviceBuffer> mem, Case c, float[] bshd, int len, int heads) {
        float[] x = bshd;
        if (c.layout() == QkvLayout.BHSD) {
            x = new float[bshd.length];
            for (int t = 0; t < len; t++) {
                for (int h = 0; h < heads; h++) {
                    System.arraycopy(bshd, (t * heads + h) * D, x, (h * len + t) * D, D);
                }
            }
        }
        short[] bits = HostFloats.toBits(c.dtype(), x);
        DeviceBuffer b = DeviceBuffer.allocate(device, 2L * bits.length);
        mem.add(b);
        b.copyFromHost(Pointer.to(bits), 0, 2L * bits.length);
        return b.view(c.dtype(), shape(c.layout(), len, heads));
    }

    private DeviceTensor alloc(List<DeviceBuffer> mem, DeviceDataType type, long... shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        DeviceBuffer b = DeviceBuffer.allocate(device, Math.max(16, n * type.byteSize()));
        mem.add(b);
        return b.view(type, shape);
    }

    private static void poison(List<DeviceBuffer> mem, DeviceTensor out, DeviceTensor lse) {
        for (DeviceBuffer b : mem) {
            if (b.getAddress() == out.getAddress()) {
                b.fill16(HostFloats.nan(out.getDataType()));
            } else if (b.getAddress() == lse.getAddress()) {
                b.fill32(Float.floatToIntBits(Float.NaN));
            }
        }
    }

    private static DeviceBuffer owner(List<DeviceBuffer> mem, DeviceTensor t) {
        for (DeviceBuffer b : mem) {
            if (b.getAddress() == t.getAddress()) {
                return b;
            }
        }
        throw new IllegalArgumentException("not an allocation: " + t);
    }

    private static float[] download(List<DeviceBuffer> mem, DeviceTensor t, DeviceDataType type) {
        short[] bits = new short[Math.toIntExact(t.numel())];
        CudaRuntime.bind(t.getDevice());
        owner(mem, t).copyToHost(Pointer.to(bits), 0, 2L * bits.length);
        return HostFloats.fromBits(type, bits);
    }

    private static float[] downloadFloats(List<DeviceBuffer> mem, DeviceTensor t) {
        float[] x = new float[Math.toIntExact(t.numel())];
        owner(mem, t).copyToHost(Pointer.to(x), 0, 4L * x.length);
        return x;
    }

    // Host values of a [1, L, H, D] / [1, H, L, D] tensor in bshd order.
    private static float[] bshdRows(float[] x, QkvLayout layout, int len, int heads) {
        if (layout == QkvLayout.BSHD) {
            return x;
        }
        float[] y = new float[x.length];
        for (int t = 0; t < len; t++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(x, (h * len + t) * D, y, (t * heads + h) * D, D);
            }
        }
        return y;
    }

    // float64 attention of the rows of the pieces (bshd order, rows in shard order), causal bottom-right (Lq = Lk).
    private static double[] reference(float[] q, float[] k, float[] v, int l, int hq, int hkv, boolean causal,
            List<SequenceSharding.Piece> pieces) {
        int rows = 0;
        for (SequenceSharding.Piece p : pieces) {
            rows += (int) p.length();
        }
        double[] out = new double[rows * hq * D];
        double scale = 1 / Math.sqrt(D);
        double[] s = new double[l];
        int row = 0;
        for (SequenceSharding.Piece p : pieces) {
            for (int t = 0; t < p.length(); t++, row++) {
                int i = (int) p.globalStart() + t;
                for (int h = 0; h < hq; h++) {
                    int kh = h / (hq / hkv);
                    int visible = causal ? i + 1 : l;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < visible; j++) {
                        double dot = 0;
                        for (int e = 0; e < D; e++) {
                            dot += (double) q[(i * hq + h) * D + e] * k[(j * hkv + kh) * D + e];
                        }
                        s[j] = dot * scale;
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < visible; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int e = 0; e < D; e++) {
                        double acc = 0;
                        for (int j = 0; j < visible; j++) {
                            acc += s[j] * v[(j * hkv + kh) * D + e];
                        }
                        out[(row * hq + h) * D + e] = acc / sum;
                    }
                }
            }
        }
        return out;
    }
}
