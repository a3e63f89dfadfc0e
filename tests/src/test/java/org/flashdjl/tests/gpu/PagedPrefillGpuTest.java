package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.PagedPrefillKernel;
import org.flashdjl.ops.cuda.TensorMaps;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * {@link PagedPrefillKernel} on the GPU against the float64 reference on the gathered K/V: chunked prefill (Lq query
 * tokens per sequence, the last of Lk cached keys, bottom-right), page sizes 1..256 with partly filled last pages
 * and NaN-poisoned unused pages, GQA 1/4/8, empty sequences, key offsets, every option set, fp16/bf16, outputs and
 * LSE poisoned and checked fully written (and nothing past their end).
 */
@Tag("gpu")
class PagedPrefillGpuTest {

    @BeforeEach
    void requireGpu() {
        MergeStateGpuTest.assumeMergeKernels();
        assertNull(KernelModule.notBuiltReason(PagedPrefillKernel.MODULE),
                "a CUDA device exists but the paged prefill kernels are missing from the classpath");
    }

    /** lq[i] query tokens of sequence i, the last of its lk[i] cached keys (+ keyOffset). */
    record Case(DeviceDataType type, int pageSize, int hq, int hkv, int d, int[] lq, int[] lk, String option,
            int keyOffset, boolean lse) {
        @Override
        public String toString() {
            return type + " hd" + d + " page" + pageSize + " H=" + hq + "/" + hkv + " lq=" + Arrays.toString(lq)
                    + " lk=" + Arrays.toString(lk) + " " + option + (keyOffset > 0 ? " keyOffset=" + keyOffset : "")
                    + (lse ? "" : " no-lse");
        }
    }

    static Stream<Case> cases() {
        int[][][] seqs = {
            {{17, 113, 1}, {17, 300, 5}}, // first chunk (Lq == Lk), later chunks
            {{113, 0, 17}, {113, 0, 40}}, // an empty sequence
            {{1, 17, 113}, {1, 200, 150}},
            {{0, 5, 113}, {10, 5, 241}}, // a sequence with keys but no queries
        };
        int[][] heads = {{4, 4}, {8, 2}, {8, 1}};
        int[] pages = {1, 16, 64};
        int[] dims = {64, 128};
        List<Case> list = new ArrayList<>();
        int n = 0;
        for (String option : GpuCheck.OPTIONS) {
            for (DeviceDataType type : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
                int[][] s = seqs[n % seqs.length];
                int[] h = heads[(n / 2) % heads.length];
                list.add(new Case(type, pages[n % pages.length], h[0], h[1], dims[(n / 3) % dims.length], s[0], s[1],
                        option, 0, n % 5 != 4));
                n++;
            }
        }
        DeviceDataType f16 = DeviceDataType.FP16;
        DeviceDataType b16 = DeviceDataType.BF16;
        list.add(new Case(f16, 16, 8, 2, 128, new int[] {113, 17}, new int[] {100, 1}, "all", 40, true));
        list.add(new Case(b16, 7, 8, 1, 64, new int[] {40, 1}, new int[] {300, 5}, "causal+window+sinks", 3, true));
        list.add(new Case(f16, 256, 16, 4, 128, new int[] {129, 300}, new int[] {513, 300}, "causal", 0, true));
        list.add(new Case(b16, 64, 32, 8, 128, new int[] {256, 1}, new int[] {1000, 64}, "none", 0, true));
        // several whole key tiles per CTA (the Hopper kernels' ring wraps), tiles straddling pages of 24 tokens
        list.add(new Case(f16, 24, 8, 2, 128, new int[] {300, 129}, new int[] {2100, 700}, "causal", 0, true));
        list.add(new Case(b16, 32, 4, 1, 64, new int[] {257, 64}, new int[] {1900, 64}, "all", 0, true));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void prefill(Case c) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DeviceDataType type = c.type();
        int b = c.lk().length;
        int ps = c.pageSize();
        int hq = c.hq();
        int hkv = c.hkv();
        int d = c.d();
        PagedDecodeGpuTest.ShuffledPages pages = PagedDecodeGpuTest.ShuffledPages.of(c.lk(), ps, rnd);
        PageTable table = pages.table();
        int numPages = pages.numPages();
        int[] qo = new int[b + 1];
        for (int i = 0; i < b; i++) {
            qo[i + 1] = qo[i] + c.lq()[i];
        }
        int totalQ = qo[b];
        long slotElems = (long) hkv * d;
        float[] kPool = new float[(int) ((long) numPages * ps * slotElems)];
        float[] vPool = new float[kPool.length];
        Arrays.fill(kPool, Float.NaN);
        Arrays.fill(vPool, Float.NaN);
        float[] q = MergeStateGpuTest.values(rnd, type, totalQ * hq, d); // [totalQ, Hq, D]
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = GpuCheck.spec(c.option(), hq, QkvLayout.BHSD, ref, d);
        double[] outExp = new double[totalQ * hq * d];
        float[] lowExp = new float[totalQ * hq * d];
        double[] lseExp = new double[totalQ * hq];
        long t0 = System.nanoTime();
        for (int s = 0; s < b; s++) {
            int len = c.lk()[s];
            int lq = c.lq()[s];
            float[] ks = MergeStateGpuTest.values(rnd, type, hkv * len, d); // [Hkv, len, D]
            float[] vs = MergeStateGpuTest.values(rnd, type, hkv * len, d);
            PagedDecodeGpuTest.scatter(table, s, ks, vs, hkv, d, kPool, vPool);
            if (lq == 0) {
                continue;
            }
            Reference.Options one = PagedDecodeGpuTest.copy(ref);
            one.queryStart = (long) c.keyOffset() + len - lq;
            one.keyStart = c.keyOffset();
            float[] qs = new float[hq * lq * d]; // [1, Hq, Lq, D]
            for (int i = 0; i < lq; i++) {
                for (int h = 0; h < hq; h++) {
                    System.arraycopy(q, ((qo[s] + i) * hq + h) * d, qs, (h * lq + i) * d, d);
                }
            }
            Reference.Result r = Reference.attention(qs, ks, vs, 1, hq, hkv, lq, len, d, d, one);
            float[] low = LowPrecisionReference.attention(type, qs, ks, vs, 1, hq, hkv, lq, len, d, one);
            for (int i = 0; i < lq; i++) {
                for (int h = 0; h < hq; h++) {
                    int row = (qo[s] + i) * hq + h;
                    System.arraycopy(r.out, (h * lq + i) * d, outExp, row * d, d);
                    System.arraycopy(low, (h * lq + i) * d, lowExp, row * d, d);
                    lseExp[row] = r.lse[h * lq + i];
                }
            }
        }
        long refMs = (System.nanoTime() - t0) / 1_000_000;
        long outLen = (long) totalQ * hq * d;
        long lseLen = (long) totalQ * hq;
        // every kernel family the device runs: on Hopper the wgmma kernels (the default) and the mma.sync ones
        List<FlashDispatch.Arch> archs = new ArrayList<>();
        if (CudaRuntime.getDeviceInfo(GpuCheck.DEVICE).computeCapability() == 90
                && KernelModule.notBuiltReason(PagedPrefillKernel.MODULE_SM90) == null) {
            archs.add(FlashDispatch.Arch.SM90);
        }
        archs.add(FlashDispatch.Arch.SM80);
        try (DeviceBuffer qb = MergeStateGpuTest.upload(type, q.length == 0 ? new float[8] : q, 0);
                DeviceBuffer kb = MergeStateGpuTest.upload(type, kPool, 0);
                DeviceBuffer vb = MergeStateGpuTest.upload(type, vPool, 0)) {
            for (FlashDispatch.Arch arch : archs) {
                try (DeviceBuffer ob = MergeStateGpuTest.poisoned(type, outLen + 256);
                        DeviceBuffer lb = MergeStateGpuTest.poisoned(DeviceDataType.FP32, lseLen + 256);
                        PagedPrefillKernel.PrefillStep ws =
                                PagedPrefillKernel.PrefillStep.create(table, qo, GpuCheck.DEVICE)) {
                    PagedPrefillKernel.Builder call = PagedPrefillKernel.builder()
                            .setQuery(qb.view(type, totalQ, hq, d))
                            .setKeyPages(kb.view(type, numPages, ps, hkv, d))
                            .setValuePages(vb.view(type, numPages, ps, hkv, d))
                            .setOutput(ob.view(type, totalQ, hq, d))
                            .setSpec(spec)
                            .optKeyOffset(c.keyOffset())
                            .setWorkspace(ws)
                            .optArch(arch)
                            .optSynchronize(true);
                    if (c.lse()) {
                        call.optLse(lb.view(DeviceDataType.FP32, totalQ, hq));
                    }
                    PagedPrefillKernel k = call.build();
                    assertEquals(arch == FlashDispatch.Arch.SM90, k.kernelName().startsWith("paged_prefill_sm90_"),
                            k.kernelName());
                    long mapped = TensorMaps.mappedLaunches();
                    long t1 = System.nanoTime();
                    k.run();
                    long gpuMs = (System.nanoTime() - t1) / 1_000_000;
                    // the Hopper kernels load whole tiles through the pools' tensor maps when pages are a multiple
                    // of 8 tokens
                    boolean tmaOn = !"false".equalsIgnoreCase(System.getProperty("flashdjl.flash.tma"));
                    assertEquals(arch == FlashDispatch.Arch.SM90 && ps % 8 == 0 && tmaOn ? 1 : 0,
                            TensorMaps.mappedLaunches() - mapped,
                            k.kernelName() + " page " + ps + ": launches with maps");
                    String what = c + " [" + k.kernelName() + "]";
                    float[] outAll = MergeStateGpuTest.download(ob, type, outLen + 256);
                    float[] lseAll = MergeStateGpuTest.download(lb, DeviceDataType.FP32, lseLen + 256);
                    for (long i = outLen; i < outAll.length; i++) {
                        assertTrue(Float.isNaN(outAll[(int) i]), what + ": wrote past the output's end (element " + i
                                + ")");
                    }
                    for (long i = lseLen; i < lseAll.length; i++) {
                        assertTrue(Float.isNaN(lseAll[(int) i]), what + ": wrote past the LSE's end (element " + i
                                + ")");
                    }
                    float[] out = Arrays.copyOf(outAll, (int) outLen);
                    float[] lse = c.lse() ? Arrays.copyOf(lseAll, (int) lseLen) : null;
                    if (!c.lse()) {
                        for (int i = 0; i < lseLen; i++) {
                            assertTrue(Float.isNaN(lseAll[i]), what + ": no LSE asked, but the LSE buffer was written");
                        }
                    }
                    PagedDecodeGpuTest.compare(what, seed, type, outExp, lowExp, lseExp, out, lse, refMs, gpuMs);
                }
            }
        }
    }
}
