package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.Assumptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Runs one flash-attention case on the GPU (JCuda memory, fresh random inputs rounded to the dtype, NaN-poisoned
 * output and LSE plus a guard region after each) and checks it against the float64 {@link Reference} with the
 * flash-attention error budget.
 */
final class GpuCheck {

    /** The device under test ({@code -Dflashdjl.gpu.device}, default 0). */
    static final int DEVICE = Integer.getInteger("flashdjl.gpu.device", 0);

    /** A shorter sweep ({@code -Dflashdjl.gpu.quick=true}): no 1023-long sequences. */
    static final boolean QUICK = Boolean.getBoolean("flashdjl.gpu.quick");

    private static final Logger logger = LoggerFactory.getLogger(GpuCheck.class);
    private static final int GUARD = 256; // poisoned elements after each output, never written
    private static final List<String> REPORT = Collections.synchronizedList(new ArrayList<>());

    private GpuCheck() {}

    /** Skips (with the reason) without a CUDA device; fails when a device exists but the kernels were not built. */
    static void assumeGpu() {
        String why = CudaRuntime.unavailableReason();
        Assumptions.assumeTrue(why == null, () -> "no CUDA device: " + why);
        assumeDevice();
        assertNull(KernelModule.notBuiltReason(KernelModule.FLASH_FWD),
                "a CUDA device exists but the flash kernels are missing from the classpath");
    }

    private static void assumeDevice() {
        Assumptions.assumeTrue(DEVICE < CudaRuntime.getDeviceCount(),
                () -> "no CUDA device " + DEVICE + " (" + CudaRuntime.getDeviceCount() + " visible)");
    }

    /** How q, k, v and the output are laid out in memory and described to the kernel. */
    enum Mode {
        /** bhsd memory, bhsd spec. */
        BHSD,
        /** bshd memory, bshd spec. */
        BSHD,
        /** bshd memory seen as a bhsd view through permuted strides, bhsd spec. */
        BHSD_VIEW_OF_BSHD,
        /** bhsd spec: q, k and the output in bhsd memory, v in bshd memory through strides (v's strides differ). */
        BHSD_V_BSHD
    }

    /** The option sets of the sweep. */
    static final String[] OPTIONS = {
        "none", "causal", "window", "causal+window+sinks", "alibi", "softcap", "causal+softcap", "all",
        "window-right", "scale", "sinks-no-window", "causal+alibi"
    };

    /** Builds the spec of an option set and fills the matching reference options. */
    static AttentionSpec spec(String option, int hq, QkvLayout layout, Reference.Options ref, int headDim) {
        AttentionSpec.Builder b = AttentionSpec.builder().optLayout(layout);
        float[] slopes = new float[hq];
        for (int h = 0; h < hq; h++) {
            slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / hq);
        }
        switch (option) {
            case "none":
                break;
            case "causal":
                b.optCausal(true);
                ref.causal = true;
                break;
            case "window":
                b.optWindowBounds(32, 8);
                ref.windowLeft = 32;
                ref.windowRight = 8;
                break;
            case "causal+window+sinks":
                b.optCausal(true).optWindowBounds(24, -1).optSinkTokens(4);
                ref.causal = true;
                ref.windowLeft = 24;
                ref.sinkTokens = 4;
                break;
            case "alibi":
                b.optAlibiSlopes(slopes);
                ref.alibi = slopes;
                break;
            case "causal+alibi": // Hopper hd 64 / 128: the causal_alibi kernels, elsewhere the general one
                b.optCausal(true).optAlibiSlopes(slopes);
                ref.causal = true;
                ref.alibi = slopes;
                break;
            case "softcap": // the general kernel
                b.optSoftcap(3f);
                ref.softcap = 3f;
                break;
            case "softcap-low": // most scores past the cap: softcap's walk with its exact tanh
                b.optSoftcap(0.25f);
                ref.softcap = 0.25f;
                break;
            case "softcap-high": // Gemma 2's cap: half takes the tier reference, bfloat16 the cap's
                b.optSoftcap(50f);
                ref.softcap = 50f;
                break;
            case "causal+softcap": // Hopper hd 64 / 128: the causal_softcap kernels, elsewhere the general one
                b.optCausal(true).optSoftcap(10f);
                ref.causal = true;
                ref.softcap = 10f;
                break;
            case "causal+softcap-low": // most scores past the cap: softcap's walk with its exact tanh
                b.optCausal(true).optSoftcap(0.25f);
                ref.causal = true;
                ref.softcap = 0.25f;
                break;
            case "causal+softcap-high": // Gemma 2's cap: half takes the tier reference, bfloat16 the cap's
                b.optCausal(true).optSoftcap(50f);
                ref.causal = true;
                ref.softcap = 50f;
                break;
            case "all":
                b.optCausal(true).optWindowBounds(64, 0).optSinkTokens(3).optAlibiSlopes(slopes).optSoftcap(10f);
                ref.causal = true;
                ref.windowLeft = 64;
                ref.windowRight = 0;
                ref.sinkTokens = 3;
                ref.alibi = slopes;
                ref.softcap = 10f;
                break;
            case "window-right":
                b.optWindowBounds(-1, 5);
                ref.windowRight = 5;
                break;
            case "scale":
                b.optScale(0.3f);
                ref.scale = 0.3f;
                return b.build();
            case "sinks-no-window":
                b.optSinkTokens(4);
                ref.sinkTokens = 4;
                break;
            default:
                throw new IllegalArgumentException("unknown option set " + option);
        }
        ref.scale = (float) (1.0 / Math.sqrt(headDim));
        return b.build();
    }

    /**
     * One dense case; {@code queryStart} non-null places the block at global positions (query row 0 at queryStart,
     * key 0 at keyStart: {@code FlashAttention.Builder.optPositions}).
     */
    record Dense(DeviceDataType type, String option, int b, int hq, int hkv, int lq, int lk, int d, Mode mode,
            boolean lse, Long queryStart, long keyStart) {
        Dense(DeviceDataType type, String option, int b, int hq, int hkv, int lq, int lk, int d, Mode mode,
                boolean lse) {
            this(type, option, b, hq, hkv, lq, lk, d, mode, lse, null, 0);
        }

        @Override
        public String toString() {
            return type + " hd" + d + " " + option + " B=" + b + " H=" + hq + "/" + hkv + " Lq=" + lq + " Lk=" + lk
                    + " " + mode.name().toLowerCase(Locale.ROOT) + (lse ? "" : " no-lse")
                    + (queryStart == null ? "" : " at q" + queryStart + "/k" + keyStart);
        }
    }

    /** One varlen case; {@code paddedV}: v's rows hold one more (unused) head than k's, so its row stride differs. */
    record Varlen(DeviceDataType type, String option, int hq, int hkv, int d, int[] lq, int[] lk, boolean paddedV) {
        Varlen(DeviceDataType type, String option, int hq, int hkv, int d, int[] lq, int[] lk) {
            this(type, option, hq, hkv, d, lq, lk, false);
        }

        @Override
        public String toString() {
            return type + " hd" + d + " " + option + " varlen H=" + hq + "/" + hkv + " Lq=" + Arrays.toString(lq)
                    + " Lk=" + Arrays.toString(lk) + (paddedV ? " padded-v" : "");
        }
    }

    /** Reference results in the kernel's memory order. */
    static final class Expected {
        final double[] out;
        final float[] low;
        final double[] lse;

        Expected(double[] out, float[] low, double[] lse) {
            this.out = out;
            this.low = low;
            this.lse = lse;
        }
    }

    static void runDense(TestMemory mem, Dense c) {
        runDense(mem, c, false);
    }

    /** A dense case; {@code packGqa}: through {@code FlashAttention.Builder.optPackGqa} (plain cases only). */
    static void runDense(TestMemory mem, Dense c, boolean packGqa) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DeviceDataType type = c.type();
        int b = c.b();
        int hq = c.hq();
        int hkv = c.hkv();
        int lq = c.lq();
        int lk = c.lk();
        int d = c.d();
        QkvLayout layout = c.mode() == Mode.BSHD ? QkvLayout.BSHD : QkvLayout.BHSD;
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), hq, layout, ref, d);
        ref.queryStart = c.queryStart();
        ref.keyStart = c.keyStart();
        float[] q = HostFloats.roundInPlace(type, Reference.randn(rnd, b * hq * lq * d)); // bhsd
        float[] k = HostFloats.roundInPlace(type, Reference.randn(rnd, b * hkv * lk * d));
        float[] v = HostFloats.roundInPlace(type, Reference.randn(rnd, b * hkv * lk * d));
        boolean bshdMemory = c.mode() == Mode.BSHD || c.mode() == Mode.BHSD_VIEW_OF_BSHD; // q, k, o, lse
        boolean vBshdMemory = bshdMemory || c.mode() == Mode.BHSD_V_BSHD;
        Mode qkoMode = c.mode() == Mode.BHSD_V_BSHD ? Mode.BHSD : c.mode();
        Mode vMode = c.mode() == Mode.BHSD_V_BSHD ? Mode.BHSD_VIEW_OF_BSHD : c.mode();
        long t0 = System.nanoTime();
        Expected e = expected(type, q, k, v, b, hq, hkv, lq, lk, d, ref);
        long refMs = (System.nanoTime() - t0) / 1_000_000;

        try (TestMemory.Buf qb = upload(mem, type, bshdMemory ? Reference.bhsdToBshd(q, b, hq, lq, d) : q);
                TestMemory.Buf kb = upload(mem, type, bshdMemory ? Reference.bhsdToBshd(k, b, hkv, lk, d) : k);
                TestMemory.Buf vb = upload(mem, type, vBshdMemory ? Reference.bhsdToBshd(v, b, hkv, lk, d) : v);
                TestMemory.Buf ob = poisoned16(mem, type, (long) b * hq * lq * d);
                TestMemory.Buf lb = poisoned32(mem, (long) b * hq * lq)) {
            FlashAttention.Builder call = FlashAttention.builder()
                    .setQuery(view(qb, type, qkoMode, b, hq, lq, d))
                    .setKey(view(kb, type, qkoMode, b, hkv, lk, d))
                    .setValue(view(vb, type, vMode, b, hkv, lk, d))
                    .setOutput(view(ob, type, qkoMode, b, hq, lq, d))
                    .setSpec(spec)
                    .optPackGqa(packGqa)
                    .optSynchronize(true);
            if (c.lse()) {
                call.optLse(lseView(lb, c.mode(), b, hq, lq));
            }
            if (c.queryStart() != null) {
                call.optPositions(c.queryStart(), c.keyStart());
            }
            long t1 = System.nanoTime();
            mem.launch(call.build());
            long gpuMs = (System.nanoTime() - t1) / 1_000_000;
            float[] out = download16(type, ob, (long) b * hq * lq * d);
            if (bshdMemory) {
                out = bshdToBhsd(out, b, hq, lq, d);
            }
            float[] lse = c.lse() ? download32(lb, (long) b * hq * lq) : null;
            if (lse != null && bshdMemory) {
                lse = bshdToBhsd(lse, b, hq, lq, 1); // [B, Lq, Hq] memory -> the reference's [B, Hq, Lq]
            }
            compare(c + (packGqa ? " packed-gqa" : ""), seed, type, e, out, lse, refMs, gpuMs);
        }
    }

    static void runVarlen(TestMemory mem, Varlen c) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DeviceDataType type = c.type();
        int hq = c.hq();
        int hkv = c.hkv();
        int d = c.d();
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), hq, QkvLayout.BHSD, ref, d);
        long t0 = System.nanoTime();
        VarlenInputs in = varlenInputs(type, hq, hkv, d, c.lq(), c.lk(), ref, rnd);
        long refMs = (System.nanoTime() - t0) / 1_000_000;
        int totalQ = in.cuQ[in.cuQ.length - 1];
        int totalK = in.cuK[in.cuK.length - 1];
        int vHeads = c.paddedV() ? hkv + 1 : hkv; // v's row pitch in heads
        float[] vp = in.v;
        if (c.paddedV()) {
            vp = new float[totalK * vHeads * d];
            for (int r = 0; r < totalK; r++) {
                System.arraycopy(in.v, r * hkv * d, vp, r * vHeads * d, hkv * d);
            }
        }
        try (TestMemory.Buf qb = upload(mem, type, in.q);
                TestMemory.Buf kb = upload(mem, type, in.k);
                TestMemory.Buf vb = upload(mem, type, vp);
                TestMemory.Buf ob = poisoned16(mem, type, (long) totalQ * hq * d);
                TestMemory.Buf lb = poisoned32(mem, (long) hq * totalQ)) {
            long t1 = System.nanoTime();
            FlashAttention call = FlashAttention.builder()
                    .setQuery(qb.view(type, totalQ, hq, d))
                    .setKey(kb.view(type, totalK, hkv, d))
                    .setValue(vb.view(type, totalK, vHeads, d).slice(1, 0, hkv))
                    .setOutput(ob.view(type, totalQ, hq, d))
                    .optLse(lb.view(DeviceDataType.FP32, totalQ, hq))
                    .optVarlen(in.cuQ, in.cuK)
                    .setSpec(spec)
                    .optSynchronize(true)
                    .build();
            mem.launch(call);
            long gpuMs = (System.nanoTime() - t1) / 1_000_000;
            float[] out = download16(type, ob, (long) totalQ * hq * d);
            float[] lse = download32(lb, (long) hq * totalQ);
            compare(c.toString(), seed, type, in.expected, out, lse, refMs, gpuMs);
        }
    }

    /** Packed varlen inputs ([total, H, D], rounded to the dtype), their offsets and the expected results. */
    static final class VarlenInputs {
        final float[] q; // [totalQ, Hq, D]
        final float[] k; // [totalK, Hkv, D]
        final float[] v; // [totalK, Hkv, D]
        final int[] cuQ; // [B + 1]
        final int[] cuK; // [B + 1]
        final Expected expected; // out [totalQ, Hq, D], LSE [totalQ, Hq]

        VarlenInputs(float[] q, float[] k, float[] v, int[] cuQ, int[] cuK, Expected expected) {
            this.q = q;
            this.k = k;
            this.v = v;
            this.cuQ = cuQ;
            this.cuK = cuK;
            this.expected = expected;
        }
    }

    /**
     * Draws the packed inputs of a varlen case and computes their reference: each sequence bottom-right aligned on
     * its own, with the options {@code ref} (scale set).
     */
    static VarlenInputs varlenInputs(DeviceDataType type, int hq, int hkv, int d, int[] lqs, int[] lks,
            Reference.Options ref, Random rnd) {
        int n = lqs.length;
        int[] cuQ = new int[n + 1];
        int[] cuK = new int[n + 1];
        for (int i = 0; i < n; i++) {
            cuQ[i + 1] = cuQ[i] + lqs[i];
            cuK[i + 1] = cuK[i] + lks[i];
        }
        int totalQ = cuQ[n];
        int totalK = cuK[n];
        float[] qp = new float[totalQ * hq * d]; // packed [totalQ, Hq, D]
        float[] kp = new float[totalK * hkv * d];
        float[] vp = new float[totalK * hkv * d];
        double[] outExp = new double[totalQ * hq * d];
        float[] lowExp = new float[totalQ * hq * d];
        double[] lseExp = new double[hq * totalQ]; // [totalQ, Hq]
        for (int i = 0; i < n; i++) {
            int lq = lqs[i];
            int lk = lks[i];
            float[] q = HostFloats.roundInPlace(type, Reference.randn(rnd, hq * lq * d));
            float[] k = HostFloats.roundInPlace(type, Reference.randn(rnd, hkv * lk * d));
            float[] v = HostFloats.roundInPlace(type, Reference.randn(rnd, hkv * lk * d));
            System.arraycopy(Reference.bhsdToBshd(q, 1, hq, lq, d), 0, qp, cuQ[i] * hq * d, lq * hq * d);
            System.arraycopy(Reference.bhsdToBshd(k, 1, hkv, lk, d), 0, kp, cuK[i] * hkv * d, lk * hkv * d);
            System.arraycopy(Reference.bhsdToBshd(v, 1, hkv, lk, d), 0, vp, cuK[i] * hkv * d, lk * hkv * d);
            Expected e = expected(type, q, k, v, 1, hq, hkv, lq, lk, d, ref);
            float[] lowBshd = Reference.bhsdToBshd(e.low, 1, hq, lq, d);
            System.arraycopy(lowBshd, 0, lowExp, cuQ[i] * hq * d, lowBshd.length);
            double[] outD = bhsdToBshd(e.out, hq, lq, d);
            System.arraycopy(outD, 0, outExp, cuQ[i] * hq * d, outD.length);
            for (int h = 0; h < hq; h++) {
                for (int r = 0; r < lq; r++) {
                    lseExp[(cuQ[i] + r) * hq + h] = e.lse[h * lq + r];
                }
            }
        }
        return new VarlenInputs(qp, kp, vp, cuQ, cuK, new Expected(outExp, lowExp, lseExp));
    }

    private static double[] bhsdToBshd(double[] x, int h, int l, int d) {
        double[] y = new double[x.length];
        for (int hi = 0; hi < h; hi++) {
            for (int li = 0; li < l; li++) {
                System.arraycopy(x, (hi * l + li) * d, y, (li * h + hi) * d, d);
            }
        }
        return y;
    }

    /** The float64 reference and the low-precision math (flat bhsd), one (batch, query head) per task. */
    static Expected expected(DeviceDataType type, float[] q, float[] k, float[] v, int b, int hq, int hkv,
            int lq, int lk, int d, Reference.Options o) {
        double[] out = new double[b * hq * lq * d];
        float[] low = new float[b * hq * lq * d];
        double[] lse = new double[b * hq * lq];
        int group = hq / hkv;
        IntStream.range(0, b * hq).parallel().forEach(t -> {
            int bi = t / hq;
            int h = t % hq;
            int kh = h / group;
            float[] qs = Arrays.copyOfRange(q, t * lq * d, (t + 1) * lq * d);
            int kOff = (bi * hkv + kh) * lk * d;
            float[] ks = Arrays.copyOfRange(k, kOff, kOff + lk * d);
            float[] vs = Arrays.copyOfRange(v, kOff, kOff + lk * d);
            Reference.Options one = new Reference.Options();
            one.scale = o.scale;
            one.causal = o.causal;
            one.windowLeft = o.windowLeft;
            one.windowRight = o.windowRight;
            one.sinkTokens = o.sinkTokens;
            one.softcap = o.softcap;
            one.queryStart = o.queryStart;
            one.keyStart = o.keyStart;
            one.alibi = o.alibi == null ? null : new float[] {o.alibi[h]};
            Reference.Result r = Reference.attention(qs, ks, vs, 1, 1, 1, lq, lk, d, d, one);
            System.arraycopy(r.out, 0, out, t * lq * d, lq * d);
            System.arraycopy(r.lse, 0, lse, t * lq, lq);
            float[] l = LowPrecisionReference.attention(type, qs, ks, vs, 1, 1, 1, lq, lk, d, one);
            System.arraycopy(l, 0, low, t * lq * d, lq * d);
        });
        return new Expected(out, low, lse);
    }

    /**
     * Checks an output (and LSE, or null) in the memory order of {@code e} against the float64 reference with the
     * flash-attention error budget; logs the case and adds it to the report.
     */
    static void compare(String name, long seed, DeviceDataType type, Expected e, float[] out, float[] lse,
            long refMs, long gpuMs) {
        int nan = 0;
        for (float x : out) {
            if (Float.isNaN(x)) {
                nan++;
            }
        }
        assertEquals(0, nan, name + ": " + nan + " of " + out.length + " output elements are NaN (unwritten or"
                + " computed NaN); seed " + seed);
        double err = Reference.maxAbsDiff(e.out, doubles(out));
        double lowErr = Reference.maxAbsDiff(e.out, doubles(e.low));
        double flashBudget = 2 * lowErr + 1e-5;
        double absTol = type == DeviceDataType.BF16 ? 1e-2 : 1e-3;
        double lseErr = 0;
        if (lse != null) {
            int lseNan = 0;
            for (float x : lse) {
                if (Float.isNaN(x)) {
                    lseNan++;
                }
            }
            assertEquals(0, lseNan, name + ": " + lseNan + " of " + lse.length + " LSE elements are NaN; seed " + seed);
            lseErr = Reference.maxAbsDiff(e.lse, doubles(lse));
        }
        String line = String.format(Locale.ROOT, "%s\terr=%.3g\tlowprec=%.3g\tbudget=%.3g\tabs=%.0e\tlse_err=%.3g"
                + "\tref_ms=%d\tgpu_ms=%d\t%s", name, err, lowErr, flashBudget, absTol, lseErr, refMs, gpuMs,
                err <= flashBudget ? "within-flash-budget" : err <= absTol ? "within-abs-only" : "OVER");
        REPORT.add(line);
        logger.info(line);
        assertTrue(err <= Math.max(flashBudget, absTol), name + ": max|out - ref| = " + err + " exceeds both the flash"
                + " budget 2*" + lowErr + "+1e-5 and the absolute " + absTol + "; seed " + seed);
        if (lse != null) {
            assertTrue(lseErr <= 1e-3, name + ": max|lse - ref| = " + lseErr + " > 1e-3; seed " + seed);
        }
    }

    /** Writes the per-case error table to {@code -Dflashdjl.gpu.report=FILE} if set. */
    static void writeReport() {
        String file = System.getProperty("flashdjl.gpu.report");
        if (file == null || REPORT.isEmpty()) {
            return;
        }
        try {
            Path p = Path.of(file);
            if (p.getParent() != null) {
                Files.createDirectories(p.getParent());
            }
            List<String> lines;
            synchronized (REPORT) {
                lines = new ArrayList<>(REPORT);
            }
            Files.write(p, lines, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double[] doubles(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    private static DeviceTensor view(TestMemory.Buf buf, DeviceDataType type, Mode mode, int b, int h, int l, int d) {
        switch (mode) {
            case BHSD:
                return buf.view(type, b, h, l, d);
            case BSHD:
                return buf.view(type, b, l, h, d);
            case BHSD_VIEW_OF_BSHD:
                return buf.view(type, b, l, h, d).permute(0, 2, 1, 3);
            default:
                throw new IllegalArgumentException("no single view for mode " + mode);
        }
    }

    // The LSE of an output in this mode: its shape without D, in the output's memory order.
    private static DeviceTensor lseView(TestMemory.Buf buf, Mode mode, int b, int h, int l) {
        switch (mode) {
            case BHSD:
                return buf.view(DeviceDataType.FP32, b, h, l);
            case BSHD:
                return buf.view(DeviceDataType.FP32, b, l, h);
            case BHSD_VIEW_OF_BSHD:
                return buf.view(DeviceDataType.FP32, b, l, h).permute(0, 2, 1);
            default: // BHSD_V_BSHD: the LSE follows q and the output
                return buf.view(DeviceDataType.FP32, b, h, l);
        }
    }

    static TestMemory.Buf upload(TestMemory mem, DeviceDataType type, float[] x) {
        short[] bits = HostFloats.toBits(type, x);
        TestMemory.Buf b = mem.allocate(2L * bits.length);
        b.upload(bits);
        return b;
    }

    private static TestMemory.Buf poisoned16(TestMemory mem, DeviceDataType type, long n) {
        TestMemory.Buf b = mem.allocate(2 * (n + GUARD));
        b.fill16(HostFloats.nan(type));
        return b;
    }

    private static TestMemory.Buf poisoned32(TestMemory mem, long n) {
        TestMemory.Buf b = mem.allocate(4 * (n + GUARD));
        b.fill32(Float.floatToRawIntBits(Float.NaN));
        return b;
    }

    private static float[] download16(DeviceDataType type, TestMemory.Buf b, long n) {
        short[] bits = new short[(int) (n + GUARD)];
        b.download(bits);
        short nan = HostFloats.nan(type);
        for (int i = (int) n; i < bits.length; i++) {
            assertEquals(nan, bits[i], "the kernel wrote past the output's end (element " + i + " of " + n + ")");
        }
        return HostFloats.fromBits(type, Arrays.copyOf(bits, (int) n));
    }

    private static float[] download32(TestMemory.Buf b, long n) {
        int[] bits = new int[(int) (n + GUARD)];
        b.download(bits);
        int nan = Float.floatToRawIntBits(Float.NaN);
        float[] x = new float[(int) n];
        for (int i = 0; i < bits.length; i++) {
            if (i >= n) {
                assertEquals(nan, bits[i], "the kernel wrote past the LSE's end (element " + i + " of " + n + ")");
            } else {
                x[i] = Float.intBitsToFloat(bits[i]);
            }
        }
        return x;
    }

    static float[] bshdToBhsd(float[] x, int b, int h, int l, int d) {
        float[] y = new float[x.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int li = 0; li < l; li++) {
                    System.arraycopy(x, ((bi * l + li) * h + hi) * d, y, ((bi * h + hi) * l + li) * d, d);
                }
            }
        }
        return y;
    }
}
