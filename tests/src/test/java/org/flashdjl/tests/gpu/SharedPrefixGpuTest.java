package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaSharedPrefixDecode;
import org.flashdjl.ops.cuda.SharedPrefixSplit;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The GPU shared-prefix (cascade) decode ({@link CudaSharedPrefixDecode}) against (1) the float64
 * {@link Reference} over each request's prefix + suffix keys and (2) {@link PagedDecodeKernel} over the full
 * sequences, whose page tables share the prefix's full pages. Sweeps P in {0, 37, 1000, 4099}, suffix lengths with
 * 0 and odd ones, page sizes 1/16, GQA 1/4/8, fp16/bf16, hd 64/128, automatic and forced prefix splits (with a
 * shorter last chunk), a batch over one 128-row flash tile. Outputs and LSEs are NaN-poisoned (with a guard after
 * the end) and must be fully written; unused suffix pages are NaN and must never be read. Error budget: the flash
 * tests' {@code max(2 * max|lowprec - ref| + 1e-5, 1e-3 fp16 / 1e-2 bf16)}, LSE within 1e-3.
 */
@Tag("gpu")
class SharedPrefixGpuTest {

    private static final Logger logger = LoggerFactory.getLogger(SharedPrefixGpuTest.class);
    private static final int GUARD = 256;

    @BeforeEach
    void requireGpu() {
        GpuCheck.assumeGpu();
        MergeStateGpuTest.assumeMergeKernels();
        assertNull(KernelModule.notBuiltReason(PagedDecodeKernel.MODULE),
                "a CUDA device exists but the paged decode kernels are missing from the classpath");
    }

    /** One case; {@code chunk} 0 = the automatic prefix split. */
    record Case(DeviceDataType type, int pageSize, int hq, int hkv, int d, int prefix, int[] lens, int chunk,
            String option, boolean lse) {
        @Override
        public String toString() {
            return type + " hd" + d + " page" + pageSize + " H=" + hq + "/" + hkv + " P=" + prefix + " suffix="
                    + (lens.length > 8 ? "B" + lens.length : Arrays.toString(lens)) + (chunk > 0 ? " chunk="
                    + chunk : "") + " " + option + (lse ? "" : " no-lse");
        }
    }

    static Stream<Case> cases() {
        int[] prefixes = {0, 37, 1000, 4099};
        int[][] lens = {{1, 17, 113}, {0, 33, 5}, {256, 0, 1, 300}, {16}};
        int[][] heads = {{4, 4}, {8, 2}, {16, 2}, {8, 1}};
        int[] pages = {1, 16};
        int[] dims = {64, 128};
        DeviceDataType[] types = {DeviceDataType.FP16, DeviceDataType.BF16};
        List<Case> list = new ArrayList<>();
        for (int n = 0; n < 16; n++) {
            int[] h = heads[n % heads.length];
            list.add(new Case(types[n % 2], pages[(n / 2) % 2], h[0], h[1], dims[(n / 4) % 2],
                    prefixes[(n + n / 4) % prefixes.length], lens[(n / 3) % lens.length], 0,
                    n % 3 == 0 ? "causal" : "none", n % 7 != 6));
        }
        DeviceDataType f16 = DeviceDataType.FP16;
        DeviceDataType b16 = DeviceDataType.BF16;
        // forced splits with a shorter last chunk, options, a batch over one 128-row tile
        list.add(new Case(f16, 16, 8, 2, 128, 1000, new int[] {1, 17, 113}, 128, "none", true));
        list.add(new Case(b16, 1, 16, 2, 64, 4099, new int[] {0, 5}, 384, "causal", true));
        list.add(new Case(f16, 16, 32, 8, 128, 4099, new int[] {31, 0, 64}, 1024, "softcap", true));
        list.add(new Case(f16, 16, 8, 8, 64, 37, new int[] {3, 9}, 16, "scale", true));
        list.add(new Case(f16, 16, 32, 8, 128, 4096, new int[] {256, 256}, 0, "none", true));
        int[] many = new int[150];
        Random r = new Random(11);
        for (int i = 0; i < many.length; i++) {
            many[i] = r.nextInt(40);
        }
        list.add(new Case(f16, 16, 8, 2, 64, 1000, many, 0, "none", true));
        list.add(new Case(b16, 16, 8, 2, 64, 1000, many, 256, "causal", false));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void cascade(Case c) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DeviceDataType type = c.type();
        int b = c.lens().length;
        int ps = c.pageSize();
        int hq = c.hq();
        int hkv = c.hkv();
        int d = c.d();
        int p = c.prefix();
        int slot = hkv * d;
        // the shared prefix, dense [P, Hkv, D]
        float[] kPre = MergeStateGpuTest.values(rnd, type, p, slot);
        float[] vPre = MergeStateGpuTest.values(rnd, type, p, slot);
        float[][] kSuf = new float[b][];
        float[][] vSuf = new float[b][];
        for (int s = 0; s < b; s++) { // [len, Hkv, D]
            kSuf[s] = MergeStateGpuTest.values(rnd, type, c.lens()[s], slot);
            vSuf[s] = MergeStateGpuTest.values(rnd, type, c.lens()[s], slot);
        }
        float[] q = MergeStateGpuTest.values(rnd, type, b * hq, d);
        // suffix pool: pages shuffled, NaN elsewhere
        int[] sufPages = new int[b];
        for (int s = 0; s < b; s++) {
            sufPages[s] = (c.lens()[s] + ps - 1) / ps;
        }
        PageTable sufTable = table(rnd, ps, sufPages, c.lens(), 0);
        float[] kPool = pool(sufTable, kSuf, null, 0, slot);
        float[] vPool = pool(sufTable, vSuf, null, 0, slot);
        // full-sequence pool: the prefix's full pages shared (pages 0..shared-1), the rest per sequence
        int shared = p / ps;
        int[] fullLens = new int[b];
        int[] ownPages = new int[b];
        for (int s = 0; s < b; s++) {
            fullLens[s] = p + c.lens()[s];
            ownPages[s] = (fullLens[s] - shared * ps + ps - 1) / ps;
        }
        PageTable fullTable = table(rnd, ps, ownPages, fullLens, shared);
        float[] kFull = pool(fullTable, kSuf, kPre, p, slot);
        float[] vFull = pool(fullTable, vSuf, vPre, p, slot);
        // references over prefix + suffix
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = GpuCheck.spec(c.option(), hq, QkvLayout.BHSD, ref, d); // layout unused
        double[] outExp = new double[b * hq * d];
        float[] lowExp = new float[b * hq * d];
        double[] lseExp = new double[b * hq];
        for (int s = 0; s < b; s++) {
            int len = p + c.lens()[s];
            float[] ks = new float[hkv * len * d]; // [Hkv, len, D]
            float[] vs = new float[ks.length];
            for (int j = 0; j < len; j++) {
                float[] kSrc = j < p ? kPre : kSuf[s];
                float[] vSrc = j < p ? vPre : vSuf[s];
                int row = j < p ? j : j - p;
                for (int h = 0; h < hkv; h++) {
                    System.arraycopy(kSrc, (row * hkv + h) * d, ks, (h * len + j) * d, d);
                    System.arraycopy(vSrc, (row * hkv + h) * d, vs, (h * len + j) * d, d);
                }
            }
            Reference.Options one = new Reference.Options();
            one.scale = ref.scale;
            one.causal = ref.causal;
            one.softcap = ref.softcap;
            one.queryStart = (long) len - 1;
            float[] qs = Arrays.copyOfRange(q, s * hq * d, (s + 1) * hq * d);
            Reference.Result r = Reference.attention(qs, ks, vs, 1, hq, hkv, 1, len, d, d, one);
            System.arraycopy(r.out, 0, outExp, s * hq * d, hq * d);
            System.arraycopy(r.lse, 0, lseExp, s * hq, hq);
            float[] low = LowPrecisionReference.attention(type, qs, ks, vs, 1, hq, hkv, 1, len, d, one);
            System.arraycopy(low, 0, lowExp, s * hq * d, hq * d);
        }
        long n = (long) b * hq * d;
        SharedPrefixSplit split = c.chunk() > 0 ? SharedPrefixSplit.bySize(p, c.chunk())
                : null;
        try (DeviceBuffer qb = MergeStateGpuTest.upload(type, q, 0);
                DeviceBuffer kpb = MergeStateGpuTest.upload(type, p == 0 ? new float[8] : kPre, 0);
                DeviceBuffer vpb = MergeStateGpuTest.upload(type, p == 0 ? new float[8] : vPre, 0);
                DeviceBuffer kb = MergeStateGpuTest.upload(type, kPool, 0);
                DeviceBuffer vb = MergeStateGpuTest.upload(type, vPool, 0);
                DeviceBuffer kfb = MergeStateGpuTest.upload(type, kFull, 0);
                DeviceBuffer vfb = MergeStateGpuTest.upload(type, vFull, 0);
                DeviceBuffer ob = MergeStateGpuTest.poisoned(type, n + GUARD);
                DeviceBuffer lb = MergeStateGpuTest.poisoned(DeviceDataType.FP32, (long) b * hq + GUARD);
                DeviceBuffer pob = MergeStateGpuTest.poisoned(type, n + GUARD);
                DeviceBuffer plb = MergeStateGpuTest.poisoned(DeviceDataType.FP32, (long) b * hq + GUARD);
                CudaSharedPrefixDecode plan = split == null
                        ? CudaSharedPrefixDecode.begin(sufTable, p, hq, hkv, d, GpuCheck.DEVICE)
                        : CudaSharedPrefixDecode.begin(sufTable, p, hq, hkv, d, GpuCheck.DEVICE, split, null);
                PagedDecodeKernel.DecodeStep fullWs = PagedDecodeKernel.DecodeStep.create(fullTable, hq, hkv, d,
                        GpuCheck.DEVICE)) {
            int sufNum = sufTable.getMaxPageIndex() + 1;
            int fullNum = fullTable.getMaxPageIndex() + 1;
            CudaSharedPrefixDecode.Layer layer = plan.prepare(qb.view(type, b, hq, d), kpb.view(type, p, hkv, d),
                    vpb.view(type, p, hkv, d), kb.view(type, Math.max(1, sufNum), ps, hkv, d),
                    vb.view(type, Math.max(1, sufNum), ps, hkv, d), spec, ob.view(type, b, hq, d),
                    c.lse() ? lb.view(DeviceDataType.FP32, b, hq) : null).optSynchronize(true);
            layer.run();
            layer.run(); // a second layer call on the same plan gives the same result (no state carried over)
            PagedDecodeKernel plain = PagedDecodeKernel.builder().setQuery(qb.view(type, b, hq, d))
                    .setKeyPages(kfb.view(type, fullNum, ps, hkv, d)).setValuePages(vfb.view(type, fullNum, ps, hkv, d))
                    .setOutput(pob.view(type, b, hq, d)).optLse(plb.view(DeviceDataType.FP32, b, hq)).setSpec(spec)
                    .setWorkspace(fullWs).optSynchronize(true).build();
            plain.run();
            float[] outAll = MergeStateGpuTest.download(ob, type, n + GUARD);
            float[] lseAll = MergeStateGpuTest.download(lb, DeviceDataType.FP32, (long) b * hq + GUARD);
            for (int i = (int) n; i < outAll.length; i++) {
                assertTrue(Float.isNaN(outAll[i]), c + ": wrote past the output's end (element " + i + ")");
            }
            for (int i = c.lse() ? b * hq : 0; i < lseAll.length; i++) {
                assertTrue(Float.isNaN(lseAll[i]), c + ": wrote past the LSE's end or an unrequested LSE (" + i
                        + ")");
            }
            float[] out = Arrays.copyOf(outAll, (int) n);
            float[] lse = c.lse() ? Arrays.copyOf(lseAll, b * hq) : null;
            String name = c + " [" + plan.getSplit() + ", suffix " + plan.getWorkspace().getSchedule() + "]";
            double[] errs = compare(name, seed, type, outExp, lowExp, lseExp, out, lse);
            float[] pOut = MergeStateGpuTest.download(pob, type, n);
            float[] pLse = MergeStateGpuTest.download(plb, DeviceDataType.FP32, (long) b * hq);
            double diff = 0;
            for (int i = 0; i < n; i++) {
                diff = Math.max(diff, Math.abs(out[i] - pOut[i]));
            }
            double lseDiff = 0;
            if (lse != null) {
                for (int i = 0; i < lse.length; i++) {
                    if (!(lse[i] == Float.NEGATIVE_INFINITY && pLse[i] == Float.NEGATIVE_INFINITY)) {
                        lseDiff = Math.max(lseDiff, Math.abs(lse[i] - pLse[i]));
                    }
                }
            }
            double tol = type == DeviceDataType.BF16 ? 2e-2 : 2e-3;
            logger.info(String.format(Locale.ROOT, "cascade %s\terr=%.3g\tlowprec=%.3g\tlse_err=%.3g"
                    + "\tvs_paged=%.3g\tlse_vs_paged=%.3g", name, errs[0], errs[1], errs[2], diff, lseDiff));
            assertTrue(diff <= tol, name + ": max|cascade - paged decode of the full sequences| = " + diff + " > "
                    + tol + "; seed " + seed);
            assertTrue(lseDiff <= 1e-3, name + ": LSE differs from paged decode by " + lseDiff + "; seed " + seed);
        }
    }

    @Test
    void refusesWindowsSinksAndAlibiOnTheGpu() {
        PageTable t = PageTable.fromCsr(16, new int[] {0, 1}, new int[] {0}, new int[] {5}, 1);
        try (CudaSharedPrefixDecode plan = CudaSharedPrefixDecode.begin(t, 64, 8, 2, 64, GpuCheck.DEVICE);
                DeviceBuffer x = DeviceBuffer.allocate(GpuCheck.DEVICE, 1 << 20)) {
            DeviceDataType h = DeviceDataType.FP16;
            DeviceTensor q = x.view(h, 1, 8, 64);
            DeviceTensor k = x.view(h, 64, 2, 64);
            DeviceTensor pages = x.view(h, 1, 16, 2, 64);
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, () -> plan.prepare(
                    q, k, k, pages, pages, AttentionSpec.builder().optWindowBounds(16, -1).build(), q, null));
            assertTrue(e.getMessage().contains("supported here: plain or causal"), e.getMessage());
        }
    }

    /** A CSR table: {@code shared} leading pages common to every sequence, then each one's own shuffled pages. */
    private static PageTable table(Random rnd, int ps, int[] ownPages, int[] lens, int shared) {
        int b = lens.length;
        int used = Arrays.stream(ownPages).sum();
        int numPages = shared + used + 3 + used / 4;
        List<Integer> ids = new ArrayList<>();
        for (int i = shared; i < numPages; i++) {
            ids.add(i);
        }
        Collections.shuffle(ids, rnd);
        int[] indptr = new int[b + 1];
        int[] last = new int[b];
        int[] indices = new int[b * shared + used];
        int at = 0;
        int next = 0;
        for (int s = 0; s < b; s++) {
            for (int i = 0; i < shared; i++) {
                indices[at++] = i;
            }
            for (int i = 0; i < ownPages[s]; i++) {
                indices[at++] = ids.get(next++);
            }
            indptr[s + 1] = at;
            int pagesS = shared + ownPages[s];
            last[s] = pagesS == 0 ? 0 : lens[s] - (pagesS - 1) * ps;
        }
        return PageTable.fromCsr(ps, indptr, indices, last, numPages);
    }

    /** Fills a NaN pool [numPages, ps, Hkv, D]: token j of sequence s is the prefix's (j < p) or suffix's row. */
    private static float[] pool(PageTable t, float[][] suffix, float[] prefix, int p, int slot) {
        int numPages = t.getMaxPageIndex() + 1 + 3;
        float[] x = new float[Math.max(1, numPages) * t.getPageSize() * slot];
        Arrays.fill(x, Float.NaN);
        for (int s = 0; s < t.getBatchSize(); s++) {
            for (int j = 0; j < t.getSeqLen(s); j++) {
                long at = t.getSlot(s, j) * slot;
                if (j < p) {
                    System.arraycopy(prefix, j * slot, x, (int) at, slot);
                } else {
                    System.arraycopy(suffix[s], (j - p) * slot, x, (int) at, slot);
                }
            }
        }
        return x;
    }

    /** Checks against the float64 reference; returns {err, lowprec err, lse err}. */
    private static double[] compare(String name, long seed, DeviceDataType type, double[] want, float[] low,
            double[] lseWant, float[] out, float[] lse) {
        long nan = 0;
        double err = 0;
        double lowErr = 0;
        for (int i = 0; i < out.length; i++) {
            if (Float.isNaN(out[i])) {
                nan++;
            }
            err = Math.max(err, Math.abs(out[i] - want[i]));
            lowErr = Math.max(lowErr, Math.abs(low[i] - want[i]));
        }
        assertEquals(0, nan, name + ": " + nan + " of " + out.length + " output elements are NaN (unwritten, or a"
                + " NaN page was read); seed " + seed);
        double lseErr = 0;
        if (lse != null) {
            for (int i = 0; i < lse.length; i++) {
                assertTrue(!Float.isNaN(lse[i]), name + ": LSE " + i + " is NaN; seed " + seed);
                if (lseWant[i] == Double.NEGATIVE_INFINITY) {
                    assertEquals(Float.NEGATIVE_INFINITY, lse[i], name + ": row " + i + " sees no key: LSE -inf");
                } else {
                    lseErr = Math.max(lseErr, Math.abs(lse[i] - lseWant[i]));
                }
            }
        }
        double budget = 2 * lowErr + 1e-5;
        double abs = type == DeviceDataType.BF16 ? 1e-2 : 1e-3;
        assertTrue(err <= Math.max(budget, abs), name + ": max|out - ref| = " + err + " exceeds both the flash budget"
                + " 2*" + lowErr + "+1e-5 and the absolute " + abs + "; seed " + seed);
        assertTrue(lseErr <= 1e-3, name + ": max|lse - ref| = " + lseErr + " > 1e-3; seed " + seed);
        return new double[] {err, lowErr, lseErr};
    }
}
