package org.flashdjl.tests.gpu;

import jcuda.Pointer;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.CudaSharedPrefixDecode;
import org.flashdjl.ops.cuda.SharedPrefixSplit;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.paged.PageTable;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The GPU benchmark of issue 4: shared-prefix (cascade) decode ({@link CudaSharedPrefixDecode}: prefix flash with
 * splits + suffix paged decode + merges) against plain paged decode ({@link PagedDecodeKernel}, its automatic
 * split-KV schedule) over the full sequences, whose page tables share the prefix's pages. One K/V page pool holds
 * the prefix's pages in order (pages 0 .. P/page - 1: the cascade reads them as a dense [P, Hkv, D] view of the
 * same memory) and every request's suffix pages, shuffled. CUDA events, median of the repetitions after warm-up.
 *
 * <p>Default shapes: P = 32768 shared, suffix 256 each, GQA 32/8, hd 128, fp16, page 16, batch 128 and 32 (plus,
 * without {@code --quick}, batch 128 with forced prefix chunks of 1024 and 4096 keys). KV bytes are the logical
 * bytes each reads once: plain {@code B (P + S) Hkv D 2 2}, cascade {@code (P + B S) Hkv D 2 2}. The cascade's
 * parts are timed alone too. The cascade output is checked against plain decode (max |diff|). One JSON object
 * per line on stdout, a table on stderr.
 *
 * <p>Options: {@code --reps N} (default 30), {@code --warmup N} (default 5), {@code --device N}, {@code --quick}.
 */
public final class CascadeBench {

    private CascadeBench() {}

    private record Shape(int batch, int prefix, int suffix, int hq, int hkv, int d, int page, int chunk) {}

    /**
     * Runs the benchmark.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        GpuTiming.Options opts = GpuTiming.Options.parse(args);
        opts.start("CascadeBench");
        int reps = opts.reps;
        int warmup = opts.warmup;
        int device = opts.device;
        boolean quick = opts.quick;
        List<Shape> shapes = new ArrayList<>();
        shapes.add(new Shape(128, 32768, 256, 32, 8, 128, 16, 0));
        shapes.add(new Shape(32, 32768, 256, 32, 8, 128, 16, 0));
        if (!quick) {
            shapes.add(new Shape(128, 32768, 256, 32, 8, 128, 16, 1024));
            shapes.add(new Shape(128, 32768, 256, 32, 8, 128, 16, 4096));
            shapes.add(new Shape(64, 8192, 256, 32, 8, 128, 16, 0));
        }
        List<String> table = new ArrayList<>();
        table.add(String.format(Locale.ROOT, "%4s %6s %4s %-18s %9s %9s %9s %9s %9s %8s %10s %10s %9s", "B", "P",
                "S", "prefix split", "cascade", "flash", "p-merge", "suffix", "f-merge", "plain", "speedup",
                "KV GB c/p", "max|d|"));
        int failures = 0;
        for (Shape s : shapes) {
            try {
                table.add(run(device, s, reps, warmup));
            } catch (RuntimeException e) {
                failures++;
                System.out.println("{\"impl\":\"flashdjl-cascade\",\"error\":\"" + e.toString().replace("\"", "'")
                        + "\",\"shape\":\"" + s + "\"}");
                System.err.println(s + " FAILED: " + e);
                e.printStackTrace();
                if (!CudaRuntime.isAvailable()) {
                    throw e;
                }
            }
        }
        table.add("times in ms (median); speedup = plain / cascade; KV GB = logical K+V bytes read once");
        for (String line : table) {
            System.err.println(line);
        }
        System.exit(failures == 0 ? 0 : 1);
    }

    private static String run(int device, Shape s, int reps, int warmup) {
        DeviceDataType type = DeviceDataType.FP16;
        int b = s.batch();
        int ps = s.page();
        if (s.prefix() % ps != 0) {
            throw new IllegalArgumentException("the bench shares whole prefix pages: P % page must be 0");
        }
        int shared = s.prefix() / ps;
        int own = (s.suffix() + ps - 1) / ps;
        int numPages = shared + b * own;
        List<Integer> ids = new ArrayList<>();
        for (int i = shared; i < numPages; i++) {
            ids.add(i);
        }
        Collections.shuffle(ids, new Random(7));
        int[] fullIndptr = new int[b + 1];
        int[] sufIndptr = new int[b + 1];
        int[] fullIdx = new int[b * (shared + own)];
        int[] sufIdx = new int[b * own];
        int[] last = new int[b];
        int fa = 0;
        int sa = 0;
        for (int r = 0; r < b; r++) {
            for (int i = 0; i < shared; i++) {
                fullIdx[fa++] = i;
            }
            for (int i = 0; i < own; i++) {
                int page = ids.get(r * own + i);
                fullIdx[fa++] = page;
                sufIdx[sa++] = page;
            }
            fullIndptr[r + 1] = fa;
            sufIndptr[r + 1] = sa;
            last[r] = s.suffix() - (own - 1) * ps;
        }
        PageTable full = PageTable.fromCsr(ps, fullIndptr, fullIdx, last, numPages);
        PageTable suffixes = PageTable.fromCsr(ps, sufIndptr, sufIdx, last, numPages);
        long slot = (long) s.hkv() * s.d();
        long poolElems = (long) numPages * ps * slot;
        long qElems = (long) b * s.hq() * s.d();
        AttentionSpec spec = AttentionSpec.builder().build();
        CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(device);
        SharedPrefixSplit split = s.chunk() > 0
                ? SharedPrefixSplit.bySize(s.prefix(), s.chunk())
                : SharedPrefixSplit.plan(s.prefix(), b, s.hq(), info.smCount(), SharedPrefixSplit.PLAN_ROWS_PER_BLOCK);
        try (DeviceBuffer k = PagedDecodeBench.random(device, type, poolElems, 1);
                DeviceBuffer v = PagedDecodeBench.random(device, type, poolElems, 2);
                DeviceBuffer q = PagedDecodeBench.random(device, type, qElems, 3);
                DeviceBuffer oc = DeviceBuffer.allocate(device, qElems * 2);
                DeviceBuffer lc = DeviceBuffer.allocate(device, 4L * b * s.hq());
                DeviceBuffer op = DeviceBuffer.allocate(device, qElems * 2);
                DeviceBuffer lp = DeviceBuffer.allocate(device, 4L * b * s.hq());
                PagedDecodeKernel.DecodeStep ws = PagedDecodeKernel.DecodeStep.create(full, s.hq(), s.hkv(), s.d(),
                        device);
                CudaSharedPrefixDecode plan = CudaSharedPrefixDecode.begin(suffixes, s.prefix(), s.hq(), s.hkv(),
                        s.d(), device, split, null)) {
            DeviceTensor kPool = k.view(type, numPages, ps, s.hkv(), s.d());
            DeviceTensor vPool = v.view(type, numPages, ps, s.hkv(), s.d());
            DeviceTensor qv = q.view(type, b, s.hq(), s.d());
            PagedDecodeKernel plain = PagedDecodeKernel.builder().setQuery(qv).setKeyPages(kPool)
                    .setValuePages(vPool).setOutput(op.view(type, b, s.hq(), s.d()))
                    .optLse(lp.view(DeviceDataType.FP32, b, s.hq())).setSpec(spec).setWorkspace(ws).build();
            // the prefix pages 0 .. shared-1 in order are a dense [P, Hkv, D] tensor of the same pool
            CudaSharedPrefixDecode.Layer cascade = plan.prepare(qv, k.view(type, s.prefix(), s.hkv(), s.d()),
                    v.view(type, s.prefix(), s.hkv(), s.d()), kPool, vPool, spec, oc.view(type, b, s.hq(), s.d()),
                    lc.view(DeviceDataType.FP32, b, s.hq()));
            double plainMs = GpuTiming.medianMs(plain::run, reps, warmup, plain.kernelName());
            double cascadeMs = GpuTiming.medianMs(cascade::run, reps, warmup, "cascade");
            FlashAttention[] flash = cascade.getPrefixCalls();
            double flashMs = GpuTiming.medianMs(() -> {
                for (FlashAttention f : flash) {
                    f.run();
                }
            }, reps, warmup, "prefix flash");
            double pMergeMs = GpuTiming.medianMs(cascade.getPrefixMerge()::run, reps, warmup, "prefix merge");
            double suffixMs = GpuTiming.medianMs(cascade.getSuffixDecode()::run, reps, warmup, "suffix decode");
            double fMergeMs = GpuTiming.medianMs(cascade.getFinalMerge()::run, reps, warmup, "final merge");
            // correctness cross-check: one more run of each, then compare
            plain.run();
            cascade.run();
            CudaRuntime.synchronize("cascade check");
            short[] a = new short[(int) qElems];
            short[] c = new short[(int) qElems];
            op.copyToHost(Pointer.to(a), 0, 2 * qElems);
            oc.copyToHost(Pointer.to(c), 0, 2 * qElems);
            float[] fa2 = HostFloats.fromBits(type, a);
            float[] fc = HostFloats.fromBits(type, c);
            double diff = 0;
            for (int i = 0; i < fa2.length; i++) {
                double x = Math.abs(fa2[i] - fc[i]);
                diff = Float.isNaN(fa2[i]) || Float.isNaN(fc[i]) ? Double.NaN : Math.max(diff, x);
                if (Double.isNaN(diff)) {
                    break;
                }
            }
            double perToken = (double) s.hkv() * s.d() * 2 * 2;
            double plainBytes = (double) b * (s.prefix() + s.suffix()) * perToken;
            double cascadeBytes = ((double) s.prefix() + (double) b * s.suffix()) * perToken;
            double speedup = plainMs / cascadeMs;
            System.out.println(String.format(Locale.ROOT, "{\"impl\":\"flashdjl-cascade\",\"dtype\":\"fp16\","
                    + "\"batch\":%d,\"prefix\":%d,\"suffix\":%d,\"hq\":%d,\"hkv\":%d,\"hd\":%d,\"page\":%d,"
                    + "\"prefix_split\":\"%s\",\"suffix_schedule\":\"%s\",\"plain_schedule\":\"%s\","
                    + "\"cascade_ms\":%.4f,\"prefix_flash_ms\":%.4f,\"prefix_merge_ms\":%.4f,\"suffix_ms\":%.4f,"
                    + "\"final_merge_ms\":%.4f,\"plain_ms\":%.4f,\"speedup\":%.2f,\"cascade_kv_bytes\":%.0f,"
                    + "\"plain_kv_bytes\":%.0f,\"cascade_gbps\":%.1f,\"plain_gbps\":%.1f,\"max_abs_diff\":%.3g,"
                    + "\"flash_kernel\":\"%s\"}", b, s.prefix(), s.suffix(), s.hq(), s.hkv(), s.d(), ps, split,
                    plan.getWorkspace().getSchedule(), ws.getSchedule(), cascadeMs, flashMs, pMergeMs, suffixMs,
                    fMergeMs, plainMs, speedup, cascadeBytes, plainBytes, cascadeBytes / cascadeMs / 1e6,
                    plainBytes / plainMs / 1e6, diff, flash[0].kernelName(info.computeCapability())));
            System.out.flush();
            return String.format(Locale.ROOT, "%4d %6d %4d %-18s %9.4f %9.4f %9.4f %9.4f %9.4f %8.4f %9.1fx"
                    + " %5.2f/%-5.1f %9.2g", b, s.prefix(), s.suffix(), split, cascadeMs, flashMs, pMergeMs,
                    suffixMs, fMergeMs, plainMs, speedup, cascadeBytes / 1e9, plainBytes / 1e9, diff);
        }
    }
}
