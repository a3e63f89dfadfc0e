package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.paged.PagedFixture;
import org.flashdjl.ops.paged.PagedPlan;
import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Reference;

import java.util.Arrays;
import java.util.Random;

/**
 * Attention cases run through the NDArray API ({@link Attention#forward}, {@link Attention#forwardVarlen},
 * {@link PagedPlan#forward}) on the NDArrays of any manager (a GPU one for the GPU suite, the CPU in CI), with fp16
 * inputs drawn from a seed, checked against the float64 {@link Reference} with the flash-attention error budget of
 * {@link GpuCheck#compare} (the budget of docs/SEMANTICS.md; its messages carry the case and the seed). The option
 * sets are ops' {@link OptionSets}.
 */
final class NdArrayAttention {

    private static final DeviceDataType FP16 = DeviceDataType.FP16;

    private NdArrayAttention() {}

    /** One dense case: q [B, Hq, Lq, D] (bhsd) or [B, Lq, Hq, D] (bshd), k/v with Hkv heads and Lk keys. */
    record Dense(String option, int b, int hq, int hkv, int lq, int lk, int d, QkvLayout layout) {
        @Override
        public String toString() {
            return option + " B=" + b + " H=" + hq + "/" + hkv + " Lq=" + lq + " Lk=" + lk + " hd" + d + " "
                    + layout.name().toLowerCase();
        }
    }

    /** One varlen case: per-sequence query and key lengths, packed [total, H, D]. */
    record Varlen(String option, int hq, int hkv, int d, int[] lq, int[] lk) {
        @Override
        public String toString() {
            return option + " varlen H=" + hq + "/" + hkv + " hd" + d + " Lq=" + Arrays.toString(lq) + " Lk="
                    + Arrays.toString(lk);
        }
    }

    /**
     * One paged case: sequences of {@code seqLens} cached tokens at shuffled pages (unused slots NaN), queries the
     * last {@code queryLens[b]} tokens of each (null: decode, one each).
     */
    record Paged(String option, int hq, int hkv, int d, int pageSize, int[] seqLens, int[] queryLens) {
        @Override
        public String toString() {
            return option + (queryLens == null ? " decode" : " prefill Lq=" + Arrays.toString(queryLens)) + " H="
                    + hq + "/" + hkv + " hd" + d + " page " + pageSize + " Lk=" + Arrays.toString(seqLens);
        }
    }

    /** The spec of an option set in a layout, its reference options filled, the scale set in both. */
    static AttentionSpec spec(String option, int hq, int d, QkvLayout layout, Reference.Options ref, Random rnd) {
        AttentionSpec spec = OptionSets.spec(option, hq, ref, rnd).toBuilder().optLayout(layout).build();
        ref.scale = spec.scaleFor(d);
        return spec;
    }

    /**
     * Runs a dense case with a backend on {@code m}'s device and checks output and LSE.
     *
     * @param m the manager (its device is where the call runs)
     * @param c the case
     * @param backend the backend name
     * @param seed the seed of the inputs
     */
    static void runDense(NDManager m, Dense c, String backend, long seed) {
        Random rnd = new Random(seed);
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), c.hq(), c.d(), c.layout(), ref, rnd);
        float[] q = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hq() * c.lq() * c.d())); // bhsd
        float[] k = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hkv() * c.lk() * c.d()));
        float[] v = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hkv() * c.lk() * c.d()));
        long t0 = System.nanoTime();
        GpuCheck.Expected e = GpuCheck.expected(FP16, q, k, v, c.b(), c.hq(), c.hkv(), c.lq(), c.lk(), c.d(), ref);
        long refMs = (System.nanoTime() - t0) / 1_000_000;
        String name = "ndarray " + backend + " on " + m.getDevice() + ": " + c;
        try (NDManager s = m.newSubManager()) {
            long t1 = System.nanoTime();
            AttentionOutput out = Attention.forward(input(s, q, c, c.hq(), c.lq()), input(s, k, c, c.hkv(), c.lk()),
                    input(s, v, c, c.hkv(), c.lk()), spec, backend);
            float[] o = floats(out.getOutput());
            long ms = (System.nanoTime() - t1) / 1_000_000;
            boolean bshd = c.layout() == QkvLayout.BSHD;
            // the LSE has the output's shape without D: bhsd [B, Hq, Lq], bshd [B, Lq, Hq]
            checkResult(name, seed, m, out, bshd ? new Shape(c.b(), c.lq(), c.hq(), c.d())
                    : new Shape(c.b(), c.hq(), c.lq(), c.d()), bshd ? new Shape(c.b(), c.lq(), c.hq())
                    : new Shape(c.b(), c.hq(), c.lq()));
            float[] lse = floats(out.getLse());
            if (bshd) {
                o = GpuCheck.bshdToBhsd(o, c.b(), c.hq(), c.lq(), c.d());
                lse = GpuCheck.bshdToBhsd(lse, c.b(), c.hq(), c.lq(), 1);
            }
            GpuCheck.compare(name, seed, FP16, e, o, lse, refMs, ms);
        }
    }

    /**
     * Runs a varlen case with a backend on {@code m}'s device and checks output and LSE.
     *
     * @param m the manager
     * @param c the case
     * @param backend the backend name
     * @param seed the seed of the inputs
     */
    static void runVarlen(NDManager m, Varlen c, String backend, long seed) {
        Random rnd = new Random(seed);
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), c.hq(), c.d(), QkvLayout.BSHD, ref, rnd);
        long t0 = System.nanoTime();
        GpuCheck.VarlenInputs in = GpuCheck.varlenInputs(FP16, c.hq(), c.hkv(), c.d(), c.lq(), c.lk(), ref, rnd);
        long refMs = (System.nanoTime() - t0) / 1_000_000;
        int totalQ = in.cuQ[in.cuQ.length - 1];
        int totalK = in.cuK[in.cuK.length - 1];
        String name = "ndarray " + backend + " on " + m.getDevice() + ": " + c;
        try (NDManager s = m.newSubManager()) {
            long t1 = System.nanoTime();
            AttentionOutput out = Attention.forwardVarlen(
                    Reference.create(s, in.q, DataType.FLOAT16, totalQ, c.hq(), c.d()),
                    Reference.create(s, in.k, DataType.FLOAT16, totalK, c.hkv(), c.d()),
                    Reference.create(s, in.v, DataType.FLOAT16, totalK, c.hkv(), c.d()),
                    s.create(in.cuQ), s.create(in.cuK), spec, backend);
            float[] o = floats(out.getOutput());
            long ms = (System.nanoTime() - t1) / 1_000_000;
            checkResult(name, seed, m, out, new Shape(totalQ, c.hq(), c.d()), new Shape(totalQ, c.hq()));
            GpuCheck.compare(name, seed, FP16, in.expected, o, floats(out.getLse()), refMs, ms);
        }
    }

    /**
     * Runs a dense case twice, the second time with NaN in the keys (or values) that no query row can see (for
     * every batch row and head), and requires the second result finite and bit for bit the first: a hidden key
     * contributes nothing, whatever its bits (docs/SEMANTICS.md).
     *
     * @param m the manager
     * @param c the case; its option set must hide some key from every query
     * @param backend the backend name
     * @param seed the seed of the inputs
     * @param poisonValues poison the values (else the keys)
     * @return the number of poisoned key positions
     */
    static int runPoisoned(NDManager m, Dense c, String backend, long seed, boolean poisonValues) {
        Random rnd = new Random(seed);
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), c.hq(), c.d(), c.layout(), ref, rnd);
        boolean[] hidden = hiddenFromEveryQuery(ref, c.lq(), c.lk());
        int poisoned = 0;
        for (boolean h : hidden) {
            poisoned += h ? 1 : 0;
        }
        String name = "ndarray " + backend + " on " + m.getDevice() + ": " + c + ", NaN in the "
                + (poisonValues ? "values" : "keys") + " of the " + poisoned + " keys no query sees";
        assertTrue(poisoned > 0, name + ": the case hides no key from every query, nothing to poison");
        float[] q = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hq() * c.lq() * c.d())); // bhsd
        float[] k = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hkv() * c.lk() * c.d()));
        float[] v = HostFloats.roundInPlace(FP16, Reference.randn(rnd, c.b() * c.hkv() * c.lk() * c.d()));
        float[] bad = (poisonValues ? v : k).clone();
        for (int bh = 0; bh < c.b() * c.hkv(); bh++) {
            for (int j = 0; j < c.lk(); j++) {
                if (hidden[j]) {
                    Arrays.fill(bad, (bh * c.lk() + j) * c.d(), (bh * c.lk() + j + 1) * c.d(), Float.NaN);
                }
            }
        }
        try (NDManager s = m.newSubManager()) {
            NDArray qa = input(s, q, c, c.hq(), c.lq());
            AttentionOutput clean = Attention.forward(qa, input(s, k, c, c.hkv(), c.lk()),
                    input(s, v, c, c.hkv(), c.lk()), spec, backend);
            AttentionOutput dirty = Attention.forward(qa, input(s, poisonValues ? k : bad, c, c.hkv(), c.lk()),
                    input(s, poisonValues ? bad : v, c, c.hkv(), c.lk()), spec, backend);
            float[] o1 = floats(clean.getOutput());
            float[] o2 = floats(dirty.getOutput());
            float[] l1 = floats(clean.getLse());
            float[] l2 = floats(dirty.getLse());
            assertEquals(0, countNaN(o2), name + ": output elements NaN (of " + o2.length + "); seed " + seed);
            assertEquals(0, countNaN(l2), name + ": LSE elements NaN (of " + l2.length + "); seed " + seed);
            assertTrue(Arrays.equals(o1, o2), name + ": the output differs from the unpoisoned call's (max |diff| "
                    + maxAbsDiff(o1, o2) + "); seed " + seed);
            assertTrue(Arrays.equals(l1, l2), name + ": the LSE differs from the unpoisoned call's (max |diff| "
                    + maxAbsDiff(l1, l2) + "); seed " + seed);
        }
        return poisoned;
    }

    /**
     * Runs a paged case with a paged backend on {@code m}'s device ({@link PagedFixture}: K/V pools with NaN in
     * every unused page and in the tail of each last page) and checks output and LSE.
     *
     * @param m the manager
     * @param c the case
     * @param backend the paged backend name
     * @param seed the seed of the inputs
     */
    static void runPaged(NDManager m, Paged c, String backend, long seed) {
        Random rnd = new Random(seed);
        int n = c.seqLens().length;
        int[] lq = new int[n];
        int[] indptr = new int[n + 1];
        for (int i = 0; i < n; i++) {
            lq[i] = c.queryLens() == null ? 1 : c.queryLens()[i];
            indptr[i + 1] = indptr[i] + lq[i];
        }
        int totalQ = indptr[n];
        int hq = c.hq();
        int d = c.d();
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = spec(c.option(), hq, d, QkvLayout.BHSD, ref, rnd);
        String name = "ndarray paged " + backend + " on " + m.getDevice() + ": " + c;
        try (NDManager s = m.newSubManager()) {
            PagedFixture f = PagedFixture.create(s, rnd, c.pageSize(), c.hkv(), d, c.seqLens(), 3, DataType.FLOAT16);
            float[] q = new float[totalQ * hq * d]; // packed [totalQ, Hq, D]
            double[] outExp = new double[totalQ * hq * d];
            float[] lowExp = new float[totalQ * hq * d];
            double[] lseExp = new double[totalQ * hq]; // [totalQ, Hq]
            long t0 = System.nanoTime();
            for (int b = 0; b < n; b++) {
                int lk = c.seqLens()[b];
                float[] qb = HostFloats.roundInPlace(FP16, Reference.randn(rnd, lq[b] * hq * d)); // [Lq, Hq, D]
                System.arraycopy(qb, 0, q, indptr[b] * hq * d, qb.length);
                double[][] r = PagedFixture.reference(qb, f.keys[b], f.values[b], lq[b], lk, hq, c.hkv(), d, ref, 0);
                System.arraycopy(r[0], 0, outExp, indptr[b] * hq * d, r[0].length);
                System.arraycopy(r[1], 0, lseExp, indptr[b] * hq, r[1].length);
                // the same positions (reference() set them in ref), in bhsd [1, Hq, Lq, D]
                float[] low = LowPrecisionReference.attention(FP16, PagedFixture.lhdToHld(qb, lq[b], hq, d),
                        PagedFixture.lhdToHld(f.keys[b], lk, c.hkv(), d),
                        PagedFixture.lhdToHld(f.values[b], lk, c.hkv(), d), 1, hq, c.hkv(), lq[b], lk, d, ref);
                System.arraycopy(Reference.bhsdToBshd(low, 1, hq, lq[b], d), 0, lowExp, indptr[b] * hq * d,
                        low.length);
            }
            long refMs = (System.nanoTime() - t0) / 1_000_000;
            NDArray qa = Reference.create(s, q, DataType.FLOAT16, totalQ, hq, d);
            long t1 = System.nanoTime();
            try (PagedPlan plan = PagedPlan.builder(f.table).optQoIndptr(indptr).setQueryHeads(hq)
                    .setKvHeads(c.hkv()).setHeadDim(d).optDevice(m.getDevice()).optBackend(backend).build()) {
                AttentionOutput out = plan.forward(qa, f.kPages, f.vPages, spec);
                float[] o = floats(out.getOutput());
                long ms = (System.nanoTime() - t1) / 1_000_000;
                checkResult(name + " (plan backend " + plan.getBackend().getName() + ")", seed, m, out,
                        new Shape(totalQ, hq, d), new Shape(totalQ, hq));
                GpuCheck.compare(name, seed, FP16, new GpuCheck.Expected(outExp, lowExp, lseExp), o,
                        floats(out.getLse()), refMs, ms);
            }
        }
    }

    /** Which keys no query row of a dense bottom-right call sees (the reference's mask rule, restated). */
    static boolean[] hiddenFromEveryQuery(Reference.Options o, int lq, int lk) {
        boolean[] hidden = new boolean[lk];
        for (int j = 0; j < lk; j++) {
            boolean seen = false;
            for (int i = 0; i < lq && !seen; i++) {
                long pos = (long) lk - lq + i;
                seen = !(o.causal && j > pos) && !(o.windowRight >= 0 && j > pos + o.windowRight)
                        && !(o.windowLeft >= 0 && j < pos - o.windowLeft && j >= o.sinkTokens);
            }
            hidden[j] = !seen;
        }
        return hidden;
    }

    private static void checkResult(String name, long seed, NDManager m, AttentionOutput out, Shape shape,
            Shape lseShape) {
        assertEquals(m.getDevice(), out.getOutput().getDevice(), name + ": output device; seed " + seed);
        assertEquals(DataType.FLOAT16, out.getOutput().getDataType(), name + ": output dtype; seed " + seed);
        assertEquals(shape, out.getOutput().getShape(), name + ": output shape; seed " + seed);
        assertEquals(DataType.FLOAT32, out.getLse().getDataType(), name + ": LSE dtype; seed " + seed);
        assertEquals(lseShape, out.getLse().getShape(), name + ": LSE shape; seed " + seed);
    }

    // q/k/v of a dense case from flat bhsd values, in the case's layout, fp16 on s's device.
    private static NDArray input(NDManager s, float[] bhsd, Dense c, int heads, int len) {
        if (c.layout() == QkvLayout.BHSD) {
            return Reference.create(s, bhsd, DataType.FLOAT16, c.b(), heads, len, c.d());
        }
        return Reference.create(s, Reference.bhsdToBshd(bhsd, c.b(), heads, len, c.d()), DataType.FLOAT16, c.b(),
                len, heads, c.d());
    }

    /** Any float array's values (copied to the host through a temporary fp32 array, which is freed). */
    static float[] floats(NDArray a) {
        try (NDArray f = a.toType(DataType.FLOAT32, true)) {
            return f.toFloatArray();
        }
    }

    private static int countNaN(float[] x) {
        int n = 0;
        for (float f : x) {
            n += Float.isNaN(f) ? 1 : 0;
        }
        return n;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            m = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(m, d);
        }
        return m;
    }
}
