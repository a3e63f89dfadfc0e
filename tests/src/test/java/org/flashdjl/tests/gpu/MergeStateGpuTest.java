package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.Pointer;

import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.MergeStateKernel;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The merge-state kernels ({@link MergeStateKernel}) on a CUDA device against the float64 merge math of
 * {@link org.flashdjl.ops.cascade.MergeState}: fp16/bf16/fp32, in place and out of place, vectorized and scalar
 * paths (odd head dims, strided views), bhsd grouping, n stacked states (fp32 partials to fp16/bf16 too; the
 * narrow, scalar and wide kernels), LSEs
 * with {@code -inf} (one or both states empty; empty states' values poisoned with NaN and never read) and far
 * apart. Skips with the reason without a GPU.
 */
@Tag("gpu")
class MergeStateGpuTest {

    private static final Logger logger = LoggerFactory.getLogger(MergeStateGpuTest.class);

    @BeforeEach
    void requireGpu() {
        assumeMergeKernels();
    }

    /** Skips without a CUDA device; fails when a device exists but merge_state.fatbin is missing. */
    static void assumeMergeKernels() {
        String why = CudaRuntime.unavailableReason();
        Assumptions.assumeTrue(why == null, () -> "no CUDA device: " + why);
        Assumptions.assumeTrue(GpuCheck.DEVICE < CudaRuntime.getDeviceCount(),
                () -> "no CUDA device " + GpuCheck.DEVICE);
        assertNull(KernelModule.notBuiltReason(MergeStateKernel.MODULE),
                "a CUDA device exists but the merge kernels are missing from the classpath");
    }

    /** One pair case: N rows, H heads, D head dim, a row stride padding (elements) for the strided views. */
    record Pair(DeviceDataType type, int n, int h, int d, int pad, boolean inPlace) {
        @Override
        public String toString() {
            return type + " N=" + n + " H=" + h + " D=" + d + (pad > 0 ? " pad=" + pad : "")
                    + (inPlace ? " in-place" : " out-of-place");
        }
    }

    static Stream<Pair> pairs() {
        List<Pair> list = new ArrayList<>();
        for (DeviceDataType t : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16, DeviceDataType.FP32}) {
            list.add(new Pair(t, 17, 4, 128, 0, false));
            list.add(new Pair(t, 113, 8, 64, 0, true));
            list.add(new Pair(t, 3, 2, 100, 0, true)); // scalar: D not a multiple of the vector width
            list.add(new Pair(t, 9, 3, 256, 8, false)); // strided rows, still vectorized
            list.add(new Pair(t, 5, 2, 64, 3, true)); // odd padding: scalar
            list.add(new Pair(t, 1, 1, 1024, 0, false)); // one row over several warps... and chunks > threads for fp32
        }
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pairs")
    void pair(Pair c) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int rows = c.n() * c.h();
        int rowLen = c.d() + c.pad(); // elements between (n, h) rows in memory: [N, H, D + pad]
        float[] va = values(rnd, c.type(), rows, rowLen);
        float[] vb = values(rnd, c.type(), rows, rowLen);
        float[] sa = lses(rnd, rows, 0);
        float[] sb = lses(rnd, rows, 1);
        for (int r = 0; r < rows; r++) { // empty states' values are never read
            if (sa[r] == Float.NEGATIVE_INFINITY) {
                fillRow(va, r, rowLen, c.d(), Float.NaN);
            }
            if (sb[r] == Float.NEGATIVE_INFINITY) {
                fillRow(vb, r, rowLen, c.d(), Float.NaN);
            }
        }
        double[][] want = merge(new float[][] {va, vb}, new float[][] {sa, sb}, rows, rowLen, c.d());
        long[] shape = {c.n(), c.h(), c.d()};
        long[] strides = {(long) c.h() * rowLen, rowLen, 1};
        try (DeviceBuffer bva = upload(c.type(), va, 0);
                DeviceBuffer bvb = upload(c.type(), vb, 0);
                DeviceBuffer bsa = upload(DeviceDataType.FP32, sa, 0);
                DeviceBuffer bsb = upload(DeviceDataType.FP32, sb, 0);
                DeviceBuffer bvo = poisoned(c.type(), (long) rows * rowLen);
                DeviceBuffer bso = poisoned(DeviceDataType.FP32, rows)) {
            DeviceTensor tva = view(bva, c.type(), shape, strides);
            DeviceTensor tvb = view(bvb, c.type(), shape, strides);
            DeviceTensor tsa = bsa.view(DeviceDataType.FP32, c.n(), c.h());
            DeviceTensor tsb = bsb.view(DeviceDataType.FP32, c.n(), c.h());
            MergeStateKernel call = c.inPlace()
                    ? MergeStateKernel.mergeStateInPlace(tva, tsa, tvb, tsb)
                    : MergeStateKernel.mergeState(tva, tsa, tvb, tsb, view(bvo, c.type(), shape, strides),
                            bso.view(DeviceDataType.FP32, c.n(), c.h()));
            call.optSynchronize(true).run();
            float[] out = download(c.inPlace() ? bva : bvo, c.type(), (long) rows * rowLen);
            float[] lse = download(c.inPlace() ? bsa : bso, DeviceDataType.FP32, rows);
            check(c + " " + call.kernelName(), seed, c.type(), want, out, lse, rows, rowLen, c.d());
        }
    }

    /** One stacked case. */
    record Stacked(DeviceDataType in, DeviceDataType out, int n, int states, int h, int d, boolean lse) {
        @Override
        public String toString() {
            return in + "->" + out + " N=" + n + " n=" + states + " H=" + h + " D=" + d + (lse ? "" : " no-lse");
        }
    }

    static Stream<Stacked> stacked() {
        DeviceDataType f16 = DeviceDataType.FP16;
        DeviceDataType b16 = DeviceDataType.BF16;
        DeviceDataType f32 = DeviceDataType.FP32;
        return Stream.of(new Stacked(f16, f16, 17, 3, 4, 128, true), new Stacked(b16, b16, 5, 7, 8, 64, true),
                new Stacked(f32, f32, 3, 1, 2, 128, true), new Stacked(f32, f16, 1, 16, 32, 128, true),
                new Stacked(f32, b16, 64, 5, 32, 128, false), new Stacked(f32, f16, 2, 64, 4, 256, true),
                new Stacked(f16, f16, 3, 4, 2, 72, true), new Stacked(f32, b16, 7, 3, 3, 30, true),
                new Stacked(f32, f16, 1, 300, 2, 128, true), new Stacked(f32, f32, 2, 33, 3, 1024, true),
                new Stacked(f16, f16, 200, 6, 32, 64, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("stacked")
    void stacked(Stacked c) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int rows = c.n() * c.h();
        float[] v = values(rnd, c.in(), c.n() * c.states() * c.h(), c.d()); // [N, n, H, D]
        float[] s = new float[c.n() * c.states() * c.h()]; // [N, n, H]
        for (int i = 0; i < s.length; i++) {
            int mode = rnd.nextInt(8);
            s[i] = mode == 0 ? Float.NEGATIVE_INFINITY : mode == 1 ? 40f * (float) rnd.nextGaussian()
                    : (float) rnd.nextGaussian() * 3;
        }
        if (c.states() > 1) {
            for (int j = 0; j < c.states(); j++) { // one row with every state empty
                s[j * c.h()] = Float.NEGATIVE_INFINITY;
            }
        }
        for (int i = 0; i < s.length; i++) {
            if (s[i] == Float.NEGATIVE_INFINITY) {
                fillRow(v, i, c.d(), c.d(), Float.NaN);
            }
        }
        // regroup as n arrays of [N, H, D] for the reference
        float[][] vs = new float[c.states()][rows * c.d()];
        float[][] ss = new float[c.states()][rows];
        for (int nn = 0; nn < c.n(); nn++) {
            for (int j = 0; j < c.states(); j++) {
                for (int hh = 0; hh < c.h(); hh++) {
                    int src = (nn * c.states() + j) * c.h() + hh;
                    int dst = nn * c.h() + hh;
                    ss[j][dst] = s[src];
                    System.arraycopy(v, src * c.d(), vs[j], dst * c.d(), c.d());
                }
            }
        }
        double[][] want = merge(vs, ss, rows, c.d(), c.d());
        try (DeviceBuffer bv = upload(c.in(), v, 0);
                DeviceBuffer bs = upload(DeviceDataType.FP32, s, 0);
                DeviceBuffer bvo = poisoned(c.out(), (long) rows * c.d());
                DeviceBuffer bso = poisoned(DeviceDataType.FP32, rows)) {
            MergeStateKernel call = MergeStateKernel.mergeStates(
                    bv.view(c.in(), c.n(), c.states(), c.h(), c.d()),
                    bs.view(DeviceDataType.FP32, c.n(), c.states(), c.h()),
                    bvo.view(c.out(), c.n(), c.h(), c.d()),
                    c.lse() ? bso.view(DeviceDataType.FP32, c.n(), c.h()) : null);
            call.optSynchronize(true).run();
            float[] out = download(bvo, c.out(), (long) rows * c.d());
            float[] lse = c.lse() ? download(bso, DeviceDataType.FP32, rows) : null;
            check(c + " " + call.kernelName(), seed, c.out(), want, out, lse, rows, c.d(), c.d());
            if (!c.lse()) {
                float[] untouched = download(bso, DeviceDataType.FP32, rows);
                for (float x : untouched) {
                    assertTrue(Float.isNaN(x), "sOut = null must not write an LSE");
                }
            }
        }
    }

    @Test
    void bhsdOutputGroupsIntoRowsAndHeads() {
        // a bhsd output [B, H, L, D] with its LSE [B, H, L], merged as is (grouped into rows = B*H, heads = L)
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int b = 2;
        int h = 3;
        int l = 5;
        int d = 64;
        int rows = b * h * l;
        DeviceDataType t = DeviceDataType.FP16;
        float[] va = values(rnd, t, rows, d);
        float[] vb = values(rnd, t, rows, d);
        float[] sa = lses(rnd, rows, 0);
        float[] sb = lses(rnd, rows, 1);
        double[][] want = merge(new float[][] {va, vb}, new float[][] {sa, sb}, rows, d, d);
        try (DeviceBuffer bva = upload(t, va, 0);
                DeviceBuffer bvb = upload(t, vb, 0);
                DeviceBuffer bsa = upload(DeviceDataType.FP32, sa, 0);
                DeviceBuffer bsb = upload(DeviceDataType.FP32, sb, 0)) {
            MergeStateKernel call = MergeStateKernel.mergeStateInPlace(bva.view(t, b, h, l, d),
                    bsa.view(DeviceDataType.FP32, b, h, l), bvb.view(t, b, h, l, d),
                    bsb.view(DeviceDataType.FP32, b, h, l));
            call.optSynchronize(true).run();
            check("bhsd " + call.kernelName(), seed, t, want, download(bva, t, (long) rows * d),
                    download(bsa, DeviceDataType.FP32, rows), rows, d, d);
        }
    }

    // ------------------------------------------------------------------ helpers shared with the paged tests

    /** Values of N(0, 1) rounded to the dtype, [rows, rowLen] (the padding too). */
    static float[] values(Random rnd, DeviceDataType type, int rows, int rowLen) {
        float[] x = new float[rows * rowLen];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return type == DeviceDataType.FP32 ? x : HostFloats.roundInPlace(type, x);
    }

    /** LSEs: mostly N(0, 3^2), some -inf, some far apart; row 0 of both states -inf (when rows > 1). */
    private static float[] lses(Random rnd, int rows, int which) {
        float[] s = new float[rows];
        for (int i = 0; i < rows; i++) {
            int mode = rnd.nextInt(10);
            s[i] = mode == 0 ? Float.NEGATIVE_INFINITY : mode == 1 ? (which == 0 ? 60f : -60f)
                    : (float) rnd.nextGaussian() * 3;
        }
        if (rows > 1) {
            s[0] = Float.NEGATIVE_INFINITY; // with the other state's row 0: both empty
        }
        return s;
    }

    private static void fillRow(float[] v, int row, int rowLen, int d, float x) {
        for (int j = 0; j < d; j++) {
            v[row * rowLen + j] = x;
        }
    }

    /** The float64 merge of n states: {out [rows, d], lse [rows]}; an all -inf row gives (0, -inf). */
    static double[][] merge(float[][] v, float[][] s, int rows, int rowLen, int d) {
        double[] out = new double[rows * d];
        double[] lse = new double[rows];
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (float[] si : s) {
                max = Math.max(max, si[r]);
            }
            if (max == Double.NEGATIVE_INFINITY) {
                lse[r] = Double.NEGATIVE_INFINITY;
                continue;
            }
            double sum = 0;
            for (int i = 0; i < s.length; i++) {
                double w = Math.exp(s[i][r] - max);
                sum += w;
                if (w == 0) {
                    continue;
                }
                for (int j = 0; j < d; j++) {
                    out[r * d + j] += w * v[i][r * rowLen + j];
                }
            }
            for (int j = 0; j < d; j++) {
                out[r * d + j] /= sum;
            }
            lse[r] = max + Math.log(sum);
        }
        return new double[][] {out, lse};
    }

    private static void check(String name, long seed, DeviceDataType type, double[][] want, float[] out,
            float[] lse, int rows, int rowLen, int d) {
        double tol = type == DeviceDataType.FP32 ? 1e-5 : type == DeviceDataType.FP16 ? 2e-3 : 1.6e-2;
        double err = 0;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < d; j++) {
                float x = out[r * rowLen + j];
                assertTrue(!Float.isNaN(x), name + ": output (" + r + ", " + j + ") is NaN; seed " + seed);
                double e = Math.abs(x - want[0][r * d + j]) / Math.max(1, Math.abs(want[0][r * d + j]));
                err = Math.max(err, e);
            }
        }
        double lseErr = 0;
        if (lse != null) {
            for (int r = 0; r < rows; r++) {
                double w = want[1][r];
                if (w == Double.NEGATIVE_INFINITY) {
                    assertEquals(Float.NEGATIVE_INFINITY, lse[r], name + ": row " + r + " has no weight: LSE -inf");
                    continue;
                }
                assertTrue(!Float.isNaN(lse[r]), name + ": LSE " + r + " is NaN; seed " + seed);
                lseErr = Math.max(lseErr, Math.abs(lse[r] - w) / Math.max(1, Math.abs(w)));
            }
        }
        logger.info(String.format(Locale.ROOT, "merge %s: rel err %.3g (tol %.1g), lse rel err %.3g", name, err, tol,
                lseErr));
        assertTrue(err <= tol, name + ": max rel error " + err + " > " + tol + "; seed " + seed);
        assertTrue(lseErr <= 1e-5, name + ": LSE rel error " + lseErr + " > 1e-5; seed " + seed);
    }

    static DeviceTensor view(DeviceBuffer b, DeviceDataType type, long[] shape, long[] strides) {
        return DeviceTensor.fromDevicePointer(b.getAddress(), shape, strides, type, b.getDevice());
    }

    /** Uploads values as the dtype's bits, plus {@code guard} extra NaN elements. */
    static DeviceBuffer upload(DeviceDataType type, float[] x, int guard) {
        int size = type.byteSize();
        DeviceBuffer b = DeviceBuffer.allocate(GpuCheck.DEVICE, (long) size * (x.length + guard));
        try {
            if (size == 4) {
                b.fill32(Float.floatToRawIntBits(Float.NaN));
                b.copyFromHost(Pointer.to(x), 0, 4L * x.length);
            } else {
                b.fill16(HostFloats.nan(type));
                b.copyFromHost(Pointer.to(HostFloats.toBits(type, x)), 0, 2L * x.length);
            }
        } catch (RuntimeException e) {
            b.close();
            throw e;
        }
        return b;
    }

    /** A buffer of n elements filled with NaN. */
    static DeviceBuffer poisoned(DeviceDataType type, long n) {
        DeviceBuffer b = DeviceBuffer.allocate(GpuCheck.DEVICE, type.byteSize() * n);
        if (type.byteSize() == 4) {
            b.fill32(Float.floatToRawIntBits(Float.NaN));
        } else {
            b.fill16(HostFloats.nan(type));
        }
        return b;
    }

    /** Downloads n elements as floats. */
    static float[] download(DeviceBuffer b, DeviceDataType type, long n) {
        if (type.byteSize() == 4) {
            float[] x = new float[(int) n];
            b.copyToHost(Pointer.to(x), 0, 4L * n);
            return x;
        }
        short[] bits = new short[(int) n];
        b.copyToHost(Pointer.to(bits), 0, 2L * n);
        return HostFloats.fromBits(type, bits);
    }
}
