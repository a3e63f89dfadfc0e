package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
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
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * The paged decode kernels ({@link PagedDecodeKernel}) on a CUDA device against the float64 {@link Reference} on
 * each sequence's gathered keys (bottom-right: the query is the last token, {@code keyOffset} places the pages
 * after a cascade prefix): fp16/bf16, head dims 64/128/256, page sizes 1/16/64 (and 7, 256), GQA groups 1/4/8/16,
 * lengths 0/1/17/113/1023/4099, the last page partly filled, window / sinks / ALiBi / softcap / scale on and off,
 * automatic and forced split-KV. Unused pool pages and the unused tail of each last page hold NaN (never read);
 * output and LSE are NaN-poisoned before the launch and must be fully written. Error budget of the flash tests:
 * {@code max|out - ref| <= max(2 * max|lowprec - ref| + 1e-5, 1e-3 fp16 / 1e-2 bf16)}, LSE within 1e-3.
 */
@Tag("gpu")
class PagedDecodeGpuTest {

    private static final Logger logger = LoggerFactory.getLogger(PagedDecodeGpuTest.class);

    @BeforeEach
    void requireGpu() {
        MergeStateGpuTest.assumeMergeKernels();
        assertNull(KernelModule.notBuiltReason(PagedDecodeKernel.MODULE),
                "a CUDA device exists but the paged decode kernels are missing from the classpath");
    }

    /**
     * One case.
     *
     * @param splitChunk 0 = the automatic schedule, else a forced chunk size (tokens)
     */
    record Case(DeviceDataType type, int pageSize, int hq, int hkv, int d, int[] lens, String option, int keyOffset,
            int splitChunk, boolean lse) {
        @Override
        public String toString() {
            return type + " hd" + d + " page" + pageSize + " H=" + hq + "/" + hkv + " lens=" + Arrays.toString(lens)
                    + " " + option + (keyOffset > 0 ? " keyOffset=" + keyOffset : "")
                    + (splitChunk > 0 ? " chunk=" + splitChunk : "") + (lse ? "" : " no-lse");
        }
    }

    static Stream<Case> cases() {
        int[][] lens = GpuCheck.QUICK
                ? new int[][] {{1, 17, 113}, {113}, {4099}, {0, 33, 17}, {64, 16}}
                : new int[][] {{1, 17, 113}, {1023, 5}, {4099}, {0, 33, 17}, {64, 16}, {113, 1023, 1, 300}};
        int[][] heads = {{4, 4}, {8, 2}, {16, 2}};
        int[] pages = {1, 16, 64};
        int[] dims = {64, 128, 256};
        List<Case> list = new ArrayList<>();
        int n = 0;
        for (String option : GpuCheck.OPTIONS) {
            for (DeviceDataType type : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
                for (int r = 0; r < 2; r++, n++) {
                    int[] h = heads[(n / 2) % heads.length];
                    list.add(new Case(type, pages[n % pages.length], h[0], h[1], dims[(n / 3) % dims.length],
                            lens[(n / 2 + r) % lens.length], option, 0, 0, n % 5 != 4));
                }
            }
        }
        DeviceDataType f16 = DeviceDataType.FP16;
        DeviceDataType b16 = DeviceDataType.BF16;
        // forced split-KV on short sequences, key offsets (cascade suffix), odd page sizes, group 16
        list.add(new Case(f16, 16, 8, 2, 128, new int[] {113, 1023, 17, 0}, "all", 40, 32, true));
        list.add(new Case(b16, 1, 8, 1, 64, new int[] {300, 5}, "causal+window+sinks", 2, 48, true));
        list.add(new Case(f16, 7, 32, 2, 128, new int[] {200, 31, 1}, "alibi", 0, 64, true));
        list.add(new Case(f16, 256, 16, 16, 64, new int[] {513, 1}, "softcap", 5, 0, true));
        list.add(new Case(b16, 16, 32, 8, 128, new int[] {4099}, "none", 0, 0, true));
        list.add(new Case(f16, 64, 4, 1, 256, new int[] {4099, 77}, "window", 0, 0, true));
        list.add(new Case(f16, 16, 32, 8, 128, new int[] {16, 32, 48}, "none", 0, 16, false));
        // split-KV warps take several rounds of the row's 8-tile units (ragged rows, one row with a single tile)
        list.add(new Case(f16, 16, 32, 8, 128, new int[] {20000, 9000, 1}, "alibi", 0, 2048, true));
        list.add(new Case(b16, 64, 8, 2, 256, new int[] {12345}, "none", 0, 1024, true));
        // hd 128 takes the 8-warp _wide kernel for a grid of at most one CTA an SM (132 on an H100 / H200): the row
        // above (10 splits x 8 x 3 = 240 CTAs) runs the 4-warp kernel, this one (5 x 8 x 3 = 120) the _wide one with
        // its 4-tile units over ragged rows; 20 sequences x 8 kv heads without a split: 160 CTAs, the 4-warp plain one
        list.add(new Case(b16, 16, 32, 8, 128, new int[] {20000, 9000, 1}, "alibi", 0, 4096, true));
        int[] twenty = new int[20];
        for (int i = 0; i < twenty.length; i++) {
            twenty[i] = 37 * i + 1;
        }
        list.add(new Case(f16, 16, 32, 8, 128, twenty, "none", 0, 0, true));
        // 2 splits in one wave: on sm_90 the _wide_pair kernels (a cluster of 2 CTAs merges a row in shared memory),
        // a row with an empty second split (17 tokens) and one with an empty sequence among them
        list.add(new Case(f16, 16, 8, 2, 128, new int[] {300, 17, 0, 250}, "alibi", 0, 160, true));
        list.add(new Case(b16, 7, 32, 8, 128, new int[] {4099, 2000}, "causal+window+sinks", 0, 2064, true));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decode(Case c) {
        run(c);
    }

    /**
     * The cases of head dim 128 / 256 (and one of 64) under the shared memory a CTA of a compute capability 8.6 / 8.9
     * GPU may take (99 KB): the {@code _compact} kernels (hd 64's kernel fits as it is).
     *
     * @param c the case
     */
    @ParameterizedTest(name = "{0} [99 KB]")
    @MethodSource("compactCases")
    void decodeWithinTheSharedMemoryOfASmallerGpu(Case c) {
        run(c, SMALL_GPU_SHARED_MEMORY);
    }

    /** The opt-in shared memory a CTA of a compute capability 8.6 / 8.9 GPU. */
    static final int SMALL_GPU_SHARED_MEMORY = 101376;

    static Stream<Case> compactCases() {
        List<Case> all = cases().toList();
        List<Case> list = new ArrayList<>();
        boolean hd64 = false;
        for (int i = 0; i < all.size(); i++) {
            Case c = all.get(i);
            // every forced split and every case after the option sweep; from the sweep one case in three
            if (c.d() != 64 ? c.splitChunk() > 0 || i % 3 == 0 : !hd64) {
                hd64 |= c.d() == 64;
                list.add(c);
            }
        }
        return list.stream();
    }

    static void run(Case c) {
        run(c, 0);
    }

    /**
     * Runs one case against the float64 and low-precision references.
     *
     * @param c the case
     * @param sharedMemoryLimit 0, or the call's {@code optSharedMemoryLimit}
     */
    static void run(Case c, int sharedMemoryLimit) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DeviceDataType type = c.type();
        int b = c.lens().length;
        int ps = c.pageSize();
        int hq = c.hq();
        int hkv = c.hkv();
        int d = c.d();
        ShuffledPages pages = ShuffledPages.of(c.lens(), ps, rnd);
        PageTable table = pages.table();
        int numPages = pages.numPages();
        // pools [numPages, ps, Hkv, D]: NaN everywhere except the sequences' tokens
        long slotElems = (long) hkv * d;
        float[] kPool = new float[(int) ((long) numPages * ps * slotElems)];
        float[] vPool = new float[kPool.length];
        Arrays.fill(kPool, Float.NaN);
        Arrays.fill(vPool, Float.NaN);
        float[] q = MergeStateGpuTest.values(rnd, type, b * hq, d); // [B, Hq, D]
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = GpuCheck.spec(c.option(), hq, QkvLayout.BHSD, ref, d);
        double[] outExp = new double[b * hq * d];
        float[] lowExp = new float[b * hq * d];
        double[] lseExp = new double[b * hq];
        long t0 = System.nanoTime();
        for (int s = 0; s < b; s++) {
            int len = c.lens()[s];
            float[] ks = MergeStateGpuTest.values(rnd, type, hkv * len, d); // [Hkv, len, D]
            float[] vs = MergeStateGpuTest.values(rnd, type, hkv * len, d);
            scatter(table, s, ks, vs, hkv, d, kPool, vPool);
            Reference.Options one = copy(ref);
            one.queryStart = (long) c.keyOffset() + len - 1;
            one.keyStart = c.keyOffset();
            float[] qs = Arrays.copyOfRange(q, s * hq * d, (s + 1) * hq * d); // [1, Hq, 1, D]
            Reference.Result r = Reference.attention(qs, ks, vs, 1, hq, hkv, 1, len, d, d, one);
            System.arraycopy(r.out, 0, outExp, s * hq * d, hq * d);
            System.arraycopy(r.lse, 0, lseExp, s * hq, hq);
            float[] low = LowPrecisionReference.attention(type, qs, ks, vs, 1, hq, hkv, 1, len, d, one);
            System.arraycopy(low, 0, lowExp, s * hq * d, hq * d);
        }
        long refMs = (System.nanoTime() - t0) / 1_000_000;
        int maxLen = Arrays.stream(c.lens()).max().orElse(0);
        try (DeviceBuffer qb = MergeStateGpuTest.upload(type, q, 0);
                DeviceBuffer kb = MergeStateGpuTest.upload(type, kPool, 0);
                DeviceBuffer vb = MergeStateGpuTest.upload(type, vPool, 0);
                DeviceBuffer ob = MergeStateGpuTest.poisoned(type, (long) b * hq * d + 256);
                DeviceBuffer lb = MergeStateGpuTest.poisoned(DeviceDataType.FP32, (long) b * hq + 256);
                PagedDecodeKernel.DecodeStep ws = c.splitChunk() > 0
                        ? PagedDecodeKernel.DecodeStep.create(table, hq, hkv, d, GpuCheck.DEVICE,
                                new PagedDecodeKernel.Schedule(Math.max(1, (maxLen + c.splitChunk() - 1)
                                        / c.splitChunk()), c.splitChunk()))
                        : PagedDecodeKernel.DecodeStep.create(table, hq, hkv, d, GpuCheck.DEVICE)) {
            PagedDecodeKernel.Builder call = PagedDecodeKernel.builder()
                    .setQuery(qb.view(type, b, hq, d))
                    .setKeyPages(kb.view(type, numPages, ps, hkv, d))
                    .setValuePages(vb.view(type, numPages, ps, hkv, d))
                    .setOutput(ob.view(type, b, hq, d))
                    .setSpec(spec)
                    .optKeyOffset(c.keyOffset())
                    .setWorkspace(ws)
                    .optSynchronize(true);
            if (c.lse()) {
                call.optLse(lb.view(DeviceDataType.FP32, b, hq));
            }
            if (sharedMemoryLimit > 0) {
                call.optSharedMemoryLimit(sharedMemoryLimit);
            }
            PagedDecodeKernel k = call.build();
            if (sharedMemoryLimit > 0) {
                // under 99 KB: the _compact kernels at hd 128 / 256, hd 64's only kernel
                String want = d == 64 ? "_hd64_" + (k.kernelName().contains("general") ? "general" : "plain")
                        : "_compact";
                assertTrue(k.kernelName().endsWith(want), c + ": " + k.kernelName() + ", expected '" + want + "'");
            } else if (d == PagedDecodeKernel.WIDE_HEAD_DIM) {
                // the 8-warp kernel exactly for a grid of one CTA an SM at most; with 2 splits on sm_90 its
                // cluster-of-2 form
                CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(GpuCheck.DEVICE);
                boolean oneWave = (long) ws.getSchedule().numSplits() * hkv * b <= info.smCount();
                boolean pair = oneWave && ws.getSchedule().numSplits() == 2 && info.major() == 9;
                String suffix = pair ? "_wide_pair" : oneWave ? "_wide" : "";
                assertTrue(k.kernelName().endsWith(suffix) && (oneWave || !k.kernelName().contains("_wide")),
                        c + ": " + k.kernelName() + ", expected the suffix '" + suffix + "'");
            }
            long t1 = System.nanoTime();
            k.run();
            long gpuMs = (System.nanoTime() - t1) / 1_000_000;
            if (ws.getSchedule().numSplits() > 1) {
                // the split counters are the kernel's to re-zero: a second launch on the same step, into freshly
                // poisoned outputs, must give the same answer (a counter left non-zero would skip the merge)
                if (type.byteSize() == 4) {
                    ob.fill32(Float.floatToRawIntBits(Float.NaN));
                } else {
                    ob.fill16(HostFloats.nan(type));
                }
                lb.fill32(Float.floatToRawIntBits(Float.NaN));
                k.run();
            }
            float[] outAll = MergeStateGpuTest.download(ob, type, (long) b * hq * d + 256);
            float[] lseAll = MergeStateGpuTest.download(lb, DeviceDataType.FP32, (long) b * hq + 256);
            for (int i = b * hq * d; i < outAll.length; i++) {
                assertTrue(Float.isNaN(outAll[i]), c + ": wrote past the output's end (element " + i + ")");
            }
            for (int i = b * hq; i < lseAll.length; i++) {
                assertTrue(Float.isNaN(lseAll[i]), c + ": wrote past the LSE's end (element " + i + ")");
            }
            float[] out = Arrays.copyOf(outAll, b * hq * d);
            float[] lse = c.lse() ? Arrays.copyOf(lseAll, b * hq) : null;
            if (!c.lse()) {
                for (int i = 0; i < b * hq; i++) {
                    assertTrue(Float.isNaN(lseAll[i]), c + ": no LSE asked, but the LSE buffer was written");
                }
            }
            compare(c + " [" + k.kernelName() + ", " + ws.getSchedule() + "]", seed, type, outExp, lowExp, lseExp,
                    out, lse, refMs, gpuMs);
        }
    }

    /**
     * A page table whose sequences' pages are drawn from a shuffled pool with unused pages between them (the callers
     * fill the pools with NaN, so a read of an unused page shows).
     *
     * @param table the table
     * @param numPages the pool's pages
     */
    record ShuffledPages(PageTable table, int numPages) {
        static ShuffledPages of(int[] lens, int pageSize, Random rnd) {
            int b = lens.length;
            int[] pagesPer = new int[b];
            int used = 0;
            for (int i = 0; i < b; i++) {
                pagesPer[i] = (lens[i] + pageSize - 1) / pageSize;
                used += pagesPer[i];
            }
            int numPages = used + 3 + used / 4;
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < numPages; i++) {
                ids.add(i);
            }
            Collections.shuffle(ids, rnd);
            int[] indptr = new int[b + 1];
            int[] last = new int[b];
            for (int i = 0; i < b; i++) {
                indptr[i + 1] = indptr[i] + pagesPer[i];
                last[i] = pagesPer[i] == 0 ? 0 : lens[i] - (pagesPer[i] - 1) * pageSize;
            }
            int[] indices = new int[used];
            for (int i = 0; i < used; i++) {
                indices[i] = ids.get(i);
            }
            return new ShuffledPages(PageTable.fromCsr(pageSize, indptr, indices, last, numPages), numPages);
        }
    }

    /** Writes sequence s's keys and values ({@code [Hkv, len, D]}) into the pools ({@code [numPages, page, Hkv, D]}). */
    static void scatter(PageTable table, int s, float[] ks, float[] vs, int hkv, int d, float[] kPool, float[] vPool) {
        int len = table.getSeqLen(s);
        for (int j = 0; j < len; j++) {
            long slot = table.getSlot(s, j);
            for (int h = 0; h < hkv; h++) {
                System.arraycopy(ks, (h * len + j) * d, kPool, (int) ((slot * hkv + h) * d), d);
                System.arraycopy(vs, (h * len + j) * d, vPool, (int) ((slot * hkv + h) * d), d);
            }
        }
    }

    static Reference.Options copy(Reference.Options o) {
        Reference.Options one = new Reference.Options();
        one.scale = o.scale;
        one.causal = o.causal;
        one.windowLeft = o.windowLeft;
        one.windowRight = o.windowRight;
        one.sinkTokens = o.sinkTokens;
        one.softcap = o.softcap;
        one.alibi = o.alibi;
        return one;
    }

    static void compare(String name, long seed, DeviceDataType type, double[] want, float[] low,
            double[] lseWant, float[] out, float[] lse, long refMs, long gpuMs) {
        long nan = IntStream.range(0, out.length).filter(i -> Float.isNaN(out[i])).count();
        assertEquals(0, nan, name + ": " + nan + " of " + out.length + " output elements are NaN (unwritten, or a"
                + " NaN page was read); seed " + seed);
        double err = 0;
        double lowErr = 0;
        for (int i = 0; i < out.length; i++) {
            err = Math.max(err, Math.abs(out[i] - want[i]));
            lowErr = Math.max(lowErr, Math.abs(low[i] - want[i]));
        }
        double budget = 2 * lowErr + 1e-5;
        double abs = type == DeviceDataType.BF16 ? 1e-2 : 1e-3;
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
        String line = String.format(Locale.ROOT, "paged %s\terr=%.3g\tlowprec=%.3g\tbudget=%.3g\tabs=%.0e"
                + "\tlse_err=%.3g\tref_ms=%d\tgpu_ms=%d\t%s", name, err, lowErr, budget, abs, lseErr, refMs, gpuMs,
                err <= budget ? "within-flash-budget" : err <= abs ? "within-abs-only" : "OVER");
        logger.info(line);
        assertTrue(err <= Math.max(budget, abs), name + ": max|out - ref| = " + err + " exceeds both the flash budget"
                + " 2*" + lowErr + "+1e-5 and the absolute " + abs + "; seed " + seed);
        assertTrue(lseErr <= 1e-3, name + ": max|lse - ref| = " + lseErr + " > 1e-3; seed " + seed);
    }
}
