package org.flashdjl.tests.gpu;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.PagedPrefillKernel;
import org.flashdjl.ops.paged.PageTable;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The GPU benchmark of paged prefill ({@link PagedPrefillKernel}): each shape timed with the Hopper wgmma kernels
 * (on a compute capability 9.0 device; with their TMA page loads, and again with {@code -Dflashdjl.flash.tma=false},
 * cp.async only), with the mma.sync kernels, and with the dense flash kernel
 * ({@link FlashAttention}) on the same queries against contiguous K/V of the same lengths (what the pages cost).
 * Pages are scattered over the pool in a random order; CUDA events after warm-up, median of the repetitions.
 *
 * <p>TFLOP/s count the visible score pairs of bottom-right causal attention: query i of a sequence with Lq queries and
 * Lk keys sees {@code Lk - Lq + i + 1} keys, {@code 4 * Hq * D} FLOPs per pair (window shapes: the pairs inside the
 * window). Shapes: GQA 32/8, hd 128, page 16, fp16: one 4k prompt (Lq = Lk), chunked prefill (4 x 2k queries on 8k
 * keys, 16 x 512 on 4k), bf16, pages of 1 and 64, a sliding window of 1024 (the general kernels), hd 64 with 16/16
 * heads. One JSON object per line on stdout, e.g. <pre>{"impl":"flashdjl-paged-prefill","kernel":"paged_prefill_sm90_
 * fp16_hd128_causal","dtype":"fp16","batch":4,"lq":2048,"lk":8192,"hq":32,"hkv":8,"hd":128,"page":16,"window":-1,
 * "tma":true,"ms":1.23,"tflops":456.7}</pre> (impl {@code flashdjl-dense} for the contiguous peer), and a table on
 * stderr.
 *
 * <p>Options: {@code --reps N} (default 30), {@code --warmup N} (default 5), {@code --device N}, {@code --quick}.
 */
public final class PagedPrefillBench {

    /** The property that turns the Hopper kernels' TMA loads off (TensorMaps reads it per launch). */
    private static final String TMA_PROPERTY = "flashdjl.flash.tma";

    private PagedPrefillBench() {}

    /** One shape: B sequences of lq queries, the last of their lk keys. */
    private record Shape(String dtype, int batch, int lq, int lk, int hq, int hkv, int d, int page, int window) {
        /** Visible (query, key) pairs of one sequence under bottom-right causality (and the left window). */
        double pairs() {
            double sum = 0;
            for (int i = 0; i < lq; i++) {
                int pos = lk - lq + i; // the query's position among the keys
                int lo = window < 0 ? 0 : Math.max(0, pos - window);
                sum += pos - lo + 1;
            }
            return sum;
        }

        AttentionSpec spec() {
            AttentionSpec.Builder b = AttentionSpec.builder().optCausal(true).optLayout(QkvLayout.BSHD);
            if (window >= 0) {
                b.optWindowBounds(window, -1);
            }
            return b.build();
        }
    }

    /**
     * Runs the benchmark.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        GpuTiming.Options opts = GpuTiming.Options.parse(args);
        opts.start("PagedPrefillBench");
        List<Shape> shapes = new ArrayList<>();
        shapes.add(new Shape("fp16", 1, 4096, 4096, 32, 8, 128, 16, -1));
        shapes.add(new Shape("fp16", 4, 2048, 8192, 32, 8, 128, 16, -1));
        if (!opts.quick) {
            shapes.add(new Shape("fp16", 16, 512, 4096, 32, 8, 128, 16, -1));
            shapes.add(new Shape("bf16", 4, 2048, 8192, 32, 8, 128, 16, -1));
            shapes.add(new Shape("fp16", 4, 2048, 8192, 32, 8, 128, 1, -1));
            shapes.add(new Shape("fp16", 4, 2048, 8192, 32, 8, 128, 64, -1));
            shapes.add(new Shape("fp16", 4, 2048, 8192, 32, 8, 128, 16, 1024));
            shapes.add(new Shape("fp16", 4, 2048, 8192, 16, 16, 64, 16, -1));
        }
        boolean hopper = CudaRuntime.getDeviceInfo(opts.device).computeCapability() == 90
                && KernelModule.notBuiltReason(PagedPrefillKernel.MODULE_SM90) == null;
        List<String> table = new ArrayList<>();
        table.add(String.format(Locale.ROOT, "%-5s %3s %5s %5s %6s %4s %5s %6s | %-10s %-10s %-10s %-10s | %s",
                "dtype", "B", "Lq", "Lk", "Hq/Hkv", "hd", "page", "window", "sm90 TF/s", "no-TMA", "sm80 TF/s",
                "dense TF/s", "sm90/sm80, sm90/dense"));
        int failures = 0;
        for (Shape s : shapes) {
            double[] tflops = new double[4]; // sm90, sm90 without TMA, sm80, dense
            for (int which = 0; which < 4; which++) {
                if (which < 2 && !hopper) {
                    continue;
                }
                String before = System.getProperty(TMA_PROPERTY);
                try {
                    if (which == 1) {
                        System.setProperty(TMA_PROPERTY, "false"); // read per launch
                    }
                    tflops[which] = which == 3 ? dense(opts, s) : paged(opts, s,
                            which < 2 ? FlashDispatch.Arch.SM90 : FlashDispatch.Arch.SM80, which != 1);
                } catch (RuntimeException e) {
                    failures++;
                    System.out.println("{\"impl\":\"flashdjl-paged-prefill\",\"error\":\""
                            + e.toString().replace("\"", "'") + "\",\"shape\":\"" + s + "\"}");
                    System.err.println(s + " FAILED: " + e);
                    if (!CudaRuntime.isAvailable()) {
                        throw e;
                    }
                } finally {
                    if (before == null) {
                        System.clearProperty(TMA_PROPERTY);
                    } else {
                        System.setProperty(TMA_PROPERTY, before);
                    }
                }
            }
            table.add(String.format(Locale.ROOT, "%-5s %3d %5d %5d %3d/%-2d %4d %5d %6d | %10.1f %10.1f %10.1f "
                    + "%10.1f | %.2fx, %.2fx", s.dtype(), s.batch(), s.lq(), s.lk(), s.hq(), s.hkv(), s.d(), s.page(),
                    s.window(), tflops[0], tflops[1], tflops[2], tflops[3], tflops[0] / tflops[2],
                    tflops[0] / tflops[3]));
        }
        for (String line : table) {
            System.err.println(line);
        }
        System.exit(failures == 0 ? 0 : 1);
    }

    private static double paged(GpuTiming.Options opts, Shape s, FlashDispatch.Arch arch, boolean tma) {
        int device = opts.device;
        DeviceDataType type = DeviceDataType.ofName(s.dtype());
        PageTable table = PagedDecodeBench.scatteredTable(s.batch(), s.lk(), s.page());
        int numPages = table.getMaxPageIndex() + 1; // the pool holds exactly the pages the table uses
        int[] qo = new int[s.batch() + 1];
        for (int b = 0; b < s.batch(); b++) {
            qo[b + 1] = qo[b] + s.lq();
        }
        long poolElems = (long) numPages * s.page() * s.hkv() * s.d();
        long qElems = (long) qo[s.batch()] * s.hq() * s.d();
        try (DeviceBuffer k = PagedDecodeBench.random(device, type, poolElems, 1);
                DeviceBuffer v = PagedDecodeBench.random(device, type, poolElems, 2);
                DeviceBuffer q = PagedDecodeBench.random(device, type, qElems, 3);
                DeviceBuffer o = DeviceBuffer.allocate(device, qElems * 2);
                DeviceBuffer lse = DeviceBuffer.allocate(device, 4L * qo[s.batch()] * s.hq());
                PagedPrefillKernel.PrefillStep ws = PagedPrefillKernel.PrefillStep.create(table, qo, device)) {
            PagedPrefillKernel call = PagedPrefillKernel.builder()
                    .setQuery(q.view(type, qo[s.batch()], s.hq(), s.d()))
                    .setKeyPages(k.view(type, numPages, s.page(), s.hkv(), s.d()))
                    .setValuePages(v.view(type, numPages, s.page(), s.hkv(), s.d()))
                    .setOutput(o.view(type, qo[s.batch()], s.hq(), s.d()))
                    .optLse(lse.view(DeviceDataType.FP32, qo[s.batch()], s.hq()))
                    .setSpec(s.spec())
                    .setWorkspace(ws)
                    .optArch(arch)
                    .build();
            double ms = GpuTiming.medianMs(call::run, opts.reps, opts.warmup, call.kernelName());
            return report("flashdjl-paged-prefill", call.kernelName(), s, tma, ms);
        }
    }

    private static double dense(GpuTiming.Options opts, Shape s) {
        int device = opts.device;
        DeviceDataType type = DeviceDataType.ofName(s.dtype());
        long qElems = (long) s.batch() * s.lq() * s.hq() * s.d();
        long kvElems = (long) s.batch() * s.lk() * s.hkv() * s.d();
        try (DeviceBuffer k = PagedDecodeBench.random(device, type, kvElems, 1);
                DeviceBuffer v = PagedDecodeBench.random(device, type, kvElems, 2);
                DeviceBuffer q = PagedDecodeBench.random(device, type, qElems, 3);
                DeviceBuffer o = DeviceBuffer.allocate(device, qElems * 2);
                DeviceBuffer lse = DeviceBuffer.allocate(device, 4L * s.batch() * s.lq() * s.hq())) {
            FlashAttention call = FlashAttention.builder()
                    .setQuery(q.view(type, s.batch(), s.lq(), s.hq(), s.d()))
                    .setKey(k.view(type, s.batch(), s.lk(), s.hkv(), s.d()))
                    .setValue(v.view(type, s.batch(), s.lk(), s.hkv(), s.d()))
                    .setOutput(o.view(type, s.batch(), s.lq(), s.hq(), s.d()))
                    .optLse(lse.view(DeviceDataType.FP32, s.batch(), s.lq(), s.hq()))
                    .setSpec(s.spec())
                    .build();
            String kernel = call.kernelName(CudaRuntime.getDeviceInfo(device).computeCapability());
            double ms = GpuTiming.medianMs(call::run, opts.reps, opts.warmup, kernel);
            return report("flashdjl-dense", kernel, s, true, ms);
        }
    }

    private static double report(String impl, String kernel, Shape s, boolean tma, double ms) {
        double tflops = 4.0 * s.hq() * s.d() * s.pairs() * s.batch() / (ms * 1e-3) / 1e12;
        System.out.println(String.format(Locale.ROOT, "{\"impl\":\"%s\",\"kernel\":\"%s\",\"dtype\":\"%s\","
                + "\"batch\":%d,\"lq\":%d,\"lk\":%d,\"hq\":%d,\"hkv\":%d,\"hd\":%d,\"page\":%d,\"window\":%d,"
                + "\"tma\":%s,\"ms\":%.4f,\"tflops\":%.1f}", impl, kernel, s.dtype(), s.batch(), s.lq(), s.lk(), s.hq(),
                s.hkv(), s.d(), s.page(), s.window(), tma, ms, tflops));
        System.out.flush();
        return tflops;
    }
}
