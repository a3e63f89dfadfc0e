package org.flashdjl.tests.gpu;

import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.paged.PageTable;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The GPU benchmark of paged decode ({@link PagedDecodeKernel}) against the device's copy bandwidth measured in the
 * same run ({@code cuMemcpyDtoD} of 1 GiB, read + write bytes): GB/s of KV read, {@code bytes = B * L * Hkv * D * 2
 * (K and V) * 2 (fp16)}, timed with CUDA events after warm-up, median of the repetitions (one launch: split-KV
 * is merged inside the decode kernel). Pages are scattered over the pool in a random order.
 *
 * <p>Shapes: batch 64 x 4k tokens, GQA 32/8, hd 128, page 16 (fp16 and bf16; page 1 and 64 too); batch 1 x 64k
 * with split-KV (and without, to show what the split buys); batch 8 x 16k; bf16; hd 64 MHA. Prints one JSON object
 * per line on
 * stdout, e.g. <pre>{"impl":"flashdjl-paged","dtype":"fp16","batch":64,"L":4096,"hq":32,"hkv":8,"hd":128,
 * "page":16,"splits":1,"ms":0.41,"gbps":2620.1,"copy_gbps":2950.0,"pct_copy":88.8,"ms_loop":0.40,
 * "pct_copy_loop":89.9,"kernel":"..."}</pre> and a table on stderr. {@code pct_copy} (each launch between its own
 * events, as torch's peers are timed) is the figure issue 12's bars are read on; {@code ms_loop} / {@code
 * pct_copy_loop} time 20 launches back to back between one pair of events (median of 5 rounds), as a model's decode
 * loop runs them: a short launch timed alone also pays the GPU's start of the next one (~2 us), which the 1 GiB copy
 * it is compared with hardly does.
 *
 * <p>Options: {@code --reps N} (default 30), {@code --warmup N} (default 5), {@code --device N}, {@code --quick}.
 */
public final class PagedDecodeBench {

    private PagedDecodeBench() {}

    /** Launches per round of the back-to-back timing ({@code ms_loop}). */
    private static final int LOOP_LAUNCHES = 20;

    /** Rounds of the back-to-back timing (median). */
    private static final int LOOP_ROUNDS = 5;

    /** One shape. */
    private record Shape(String dtype, int batch, int len, int hq, int hkv, int d, int page, boolean split,
            int chunk) {
        Shape(String dtype, int batch, int len, int hq, int hkv, int d, int page, boolean split) {
            this(dtype, batch, len, hq, hkv, d, page, split, 0);
        }
    }

    /**
     * Runs the benchmark.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        GpuTiming.Options opts = GpuTiming.Options.parse(args);
        opts.start("PagedDecodeBench");
        int reps = opts.reps;
        int warmup = opts.warmup;
        int device = opts.device;
        boolean quick = opts.quick;
        double copy = copyBandwidth(device, reps);
        System.out.println(String.format(Locale.ROOT, "{\"impl\":\"cuMemcpyDtoD\",\"bytes\":%d,\"copy_gbps\":%.1f}",
                1L << 30, copy));
        List<Shape> shapes = new ArrayList<>();
        shapes.add(new Shape("fp16", 64, 4096, 32, 8, 128, 16, true));
        shapes.add(new Shape("fp16", 1, 65536, 32, 8, 128, 16, true));
        if (!quick) {
            shapes.add(new Shape("bf16", 64, 4096, 32, 8, 128, 16, true));
            shapes.add(new Shape("fp16", 64, 4096, 32, 8, 128, 1, true));
            shapes.add(new Shape("fp16", 64, 4096, 32, 8, 128, 64, true));
            shapes.add(new Shape("fp16", 1, 65536, 32, 8, 128, 16, false));
            shapes.add(new Shape("fp16", 1, 65536, 32, 8, 128, 16, true, 1024)); // other chunk sizes than the plan's
            shapes.add(new Shape("fp16", 1, 65536, 32, 8, 128, 16, true, 4096));
            shapes.add(new Shape("fp16", 8, 16384, 32, 8, 128, 16, true));
            shapes.add(new Shape("fp16", 64, 4096, 8, 8, 64, 16, true));
        }
        List<String> table = new ArrayList<>();
        table.add(String.format(Locale.ROOT, "%-5s %5s %6s %6s %4s %5s %5s %-22s %9s %9s %8s %8s", "dtype", "B", "L",
                "Hq/Hkv", "hd", "page", "split", "schedule", "ms", "GB/s", "%copy", "b2b"));
        int failures = 0;
        for (Shape s : shapes) {
            try {
                table.add(run(device, s, reps, warmup, copy));
            } catch (RuntimeException e) {
                failures++;
                System.out.println("{\"impl\":\"flashdjl-paged\",\"error\":\"" + e.toString().replace("\"", "'")
                        + "\",\"shape\":\"" + s + "\"}");
                System.err.println(s + " FAILED: " + e);
                if (!CudaRuntime.isAvailable()) {
                    throw e;
                }
            }
        }
        table.add(String.format(Locale.ROOT, "copy bandwidth (cuMemcpyDtoD 1 GiB, read + write): %.1f GB/s", copy));
        for (String line : table) {
            System.err.println(line);
        }
        System.exit(failures == 0 ? 0 : 1);
    }

    /**
     * A page table of {@code batch} sequences of {@code len} tokens each, whose pages are scattered over a pool of
     * exactly the pages they use in a fixed random order.
     */
    static PageTable scatteredTable(int batch, int len, int page) {
        int pagesPerSeq = (len + page - 1) / page;
        int numPages = batch * pagesPerSeq;
        List<Integer> ids = new ArrayList<>(numPages);
        for (int i = 0; i < numPages; i++) {
            ids.add(i);
        }
        Collections.shuffle(ids, new Random(7));
        int[] indptr = new int[batch + 1];
        int[] last = new int[batch];
        int[] indices = new int[numPages];
        for (int b = 0; b < batch; b++) {
            indptr[b + 1] = indptr[b] + pagesPerSeq;
            last[b] = len - (pagesPerSeq - 1) * page;
        }
        for (int i = 0; i < numPages; i++) {
            indices[i] = ids.get(i);
        }
        return PageTable.fromCsr(page, indptr, indices, last, numPages);
    }

    private static String run(int device, Shape s, int reps, int warmup, double copy) {
        DeviceDataType type = DeviceDataType.ofName(s.dtype());
        PageTable table = scatteredTable(s.batch(), s.len(), s.page());
        int numPages = table.getMaxPageIndex() + 1; // the pool holds exactly the pages the table uses
        long poolElems = (long) numPages * s.page() * s.hkv() * s.d();
        long qElems = (long) s.batch() * s.hq() * s.d();
        CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(device);
        PagedDecodeKernel.Schedule schedule = s.chunk() > 0
                ? new PagedDecodeKernel.Schedule((s.len() + s.chunk() - 1) / s.chunk(), s.chunk())
                : s.split() ? PagedDecodeKernel.schedule(table.getSeqLens(), s.hkv(), info.smCount())
                : new PagedDecodeKernel.Schedule(1, (s.len() + 15) / 16 * 16);
        try (DeviceBuffer k = random(device, type, poolElems, 1);
                DeviceBuffer v = random(device, type, poolElems, 2);
                DeviceBuffer q = random(device, type, qElems, 3);
                DeviceBuffer o = DeviceBuffer.allocate(device, qElems * 2);
                DeviceBuffer lse = DeviceBuffer.allocate(device, 4L * s.batch() * s.hq());
                PagedDecodeKernel.DecodeStep ws = PagedDecodeKernel.DecodeStep.create(table, s.hq(), s.hkv(), s.d(),
                        device, schedule)) {
            PagedDecodeKernel call = PagedDecodeKernel.builder()
                    .setQuery(q.view(type, s.batch(), s.hq(), s.d()))
                    .setKeyPages(k.view(type, numPages, s.page(), s.hkv(), s.d()))
                    .setValuePages(v.view(type, numPages, s.page(), s.hkv(), s.d()))
                    .setOutput(o.view(type, s.batch(), s.hq(), s.d()))
                    .optLse(lse.view(DeviceDataType.FP32, s.batch(), s.hq()))
                    .setSpec(AttentionSpec.builder().build())
                    .setWorkspace(ws)
                    .build();
            double ms = GpuTiming.medianMs(call::run, reps, warmup, call.kernelName());
            double msLoop = GpuTiming.backToBackMs(call::run, LOOP_LAUNCHES, LOOP_ROUNDS, warmup,
                    call.kernelName());
            double bytes = (double) s.batch() * s.len() * s.hkv() * s.d() * 2 * 2;
            double gbps = bytes / (ms * 1e-3) / 1e9;
            double pctLoop = 100 * (bytes / (msLoop * 1e-3) / 1e9) / copy; // as pct_copy, from ms_loop
            System.out.println(String.format(Locale.ROOT, "{\"impl\":\"flashdjl-paged\",\"dtype\":\"%s\","
                    + "\"batch\":%d,\"L\":%d,\"hq\":%d,\"hkv\":%d,\"hd\":%d,\"page\":%d,\"splits\":%d,\"chunk\":%d,"
                    + "\"ms\":%.4f,\"gbps\":%.1f,\"copy_gbps\":%.1f,\"pct_copy\":%.1f,"
                    + "\"ms_loop\":%.4f,\"pct_copy_loop\":%.1f,\"kernel\":\"%s\"}",
                    s.dtype(), s.batch(), s.len(), s.hq(), s.hkv(), s.d(), s.page(), schedule.numSplits(),
                    schedule.chunkSize(), ms, gbps, copy, 100 * gbps / copy, msLoop, pctLoop, call.kernelName()));
            System.out.flush();
            return String.format(Locale.ROOT, "%-5s %5d %6d %3d/%-2d %4d %5d %5s %-22s %9.4f %9.1f %7.1f%% %7.1f%%",
                    s.dtype(), s.batch(), s.len(), s.hq(), s.hkv(), s.d(), s.page(),
                    s.chunk() > 0 ? "fixed" : s.split() ? "auto" : "off",
                    schedule.toString(), ms, gbps, 100 * gbps / copy, pctLoop);
        }
    }

    /** Device-to-device copy bandwidth of 1 GiB, counting read + write bytes. */
    static double copyBandwidth(int device, int reps) {
        long bytes = 1L << 30;
        try (DeviceBuffer a = DeviceBuffer.allocate(device, bytes);
                DeviceBuffer b = DeviceBuffer.allocate(device, bytes)) {
            a.fill32(0x3c003c00);
            double ms = GpuTiming.medianMs(() -> CudaRuntime.check(
                    JCudaDriver.cuMemcpyDtoDAsync(b.getPointer(), a.getPointer(), bytes, null), "cuMemcpyDtoDAsync"),
                    reps, 3, "copy");
            return 2.0 * bytes / (ms * 1e-3) / 1e9;
        }
    }

    static DeviceBuffer random(int device, DeviceDataType type, long elems, long seed) {
        int block = 1 << 21;
        Random rnd = new Random(seed);
        short[] bits = new short[block];
        for (int i = 0; i < block; i++) {
            bits[i] = HostFloats.toBits(type, (float) rnd.nextGaussian());
        }
        DeviceBuffer b = DeviceBuffer.allocate(device, elems * 2);
        for (long off = 0; off < elems * 2; off += 2L * block) {
            b.copyFromHost(Pointer.to(bits), off, Math.min(2L * block, elems * 2 - off));
        }
        return b;
    }
}
