package org.flashdjl.tests.gpu;

import jcuda.Pointer;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;

/**
 * The GPU benchmark of the flash kernels through the Java launch path: fp16 and bf16, head dims 64/128/256,
 * causal and not, {@code L} = 1k, 4k, 16k with {@code batch = 16384 / L} and {@code heads = 2048 / hd} (a constant
 * 32M elements per tensor), bshd layout, timed with CUDA events after warm-up, median of the repetitions.
 *
 * <p>Prints one JSON object per line on stdout, the format {@code tests/gpu/sdpa_bench.py} prints for torch SDPA:
 * <pre>{"impl":"flashdjl-java","dtype":"fp16","hd":128,"causal":true,"L":4096,"batch":4,"heads":16,"ms":1.23,
 * "tflops":456.7}</pre>
 * (FLOPs {@code 4 * B * H * L * L * D}, halved when causal). Progress goes to stderr.
 *
 * <p>Options: {@code --quick} (hd 128, L 1k and 4k, 10 reps), {@code --reps N} (default 20), {@code --warmup N}
 * (default 3), {@code --dtypes fp16,bf16}, {@code --hd 64,128,256}, {@code --lengths 1024,4096,16384},
 * {@code --lse} (also write the LSE), {@code --device N}, {@code --idle-ms N} (default 0: the GPU idles that long
 * before each shape, so every shape is timed from rest: the H200 holds its top clock for about a second of full load
 * and then its power cap lowers it, docs/PERF.md run 56; {@code run-gpu.sh} passes the same value to
 * {@code sdpa_bench.py}, so both sides start each shape in the same clock state).
 */
public final class FlashBench {

    private static final long ELEMENTS = 16384L * 2048; // B * L * H * D for every shape
    private static final Set<String> VALUE_OPTIONS =
            Set.of("--reps", "--warmup", "--idle-ms", "--device", "--dtypes", "--hd", "--lengths");

    private FlashBench() {}

    /**
     * Runs the benchmark.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        int reps = 20;
        int warmup = 3;
        int idleMs = 0;
        int device = 0;
        boolean lse = false;
        List<String> dtypes = List.of("fp16", "bf16");
        int[] dims = {64, 128, 256};
        int[] lengths = {1024, 4096, 16384};
        for (int i = 0; i < args.length; i++) {
            if (VALUE_OPTIONS.contains(args[i]) && (i + 1 >= args.length || !isValue(args[i + 1], args[i]))) {
                System.err.println(args[i] + " needs a value: "
                        + (i + 1 < args.length ? "got '" + args[i + 1] + "'" : "none given"));
                System.exit(2);
            }
            switch (args[i]) {
                case "--quick":
                    reps = 10;
                    dims = new int[] {128};
                    lengths = new int[] {1024, 4096};
                    break;
                case "--reps":
                    reps = Integer.parseInt(args[++i]);
                    break;
                case "--warmup":
                    warmup = Integer.parseInt(args[++i]);
                    break;
                case "--idle-ms":
                    idleMs = Integer.parseInt(args[++i]);
                    break;
                case "--device":
                    device = Integer.parseInt(args[++i]);
                    break;
                case "--dtypes":
                    dtypes = Arrays.asList(args[++i].split(","));
                    break;
                case "--hd":
                    dims = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                    break;
                case "--lengths":
                    lengths = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                    break;
                case "--lse":
                    lse = true;
                    break;
                default:
                    System.err.println("unknown option " + args[i] + "; options: --quick --reps N --warmup N"
                            + " --idle-ms N --device N --dtypes fp16,bf16 --hd 64,128,256 --lengths 1024,4096,16384 --lse");
                    System.exit(2);
            }
        }
        if (reps < 10) {
            System.err.println("--reps must be >= 10 (the median of at least 10 repetitions), got " + reps);
            System.exit(2);
        }
        if (idleMs < 0 || idleMs > 60_000) {
            System.err.println("--idle-ms must be in [0, 60000], got " + idleMs);
            System.exit(2);
        }
        if (!CudaRuntime.isAvailable()) {
            System.err.println("no CUDA device: " + CudaRuntime.unavailableReason());
            System.exit(3);
        }
        CudaRuntime.bind(device);
        System.err.println("FlashBench on " + CudaRuntime.getDeviceInfo(device) + ", driver "
                + CudaRuntime.getDriverVersion() + ", reps " + reps + ", warmup " + warmup + ", idle " + idleMs + " ms");
        int failures = 0;
        for (String name : dtypes) {
            DeviceDataType type = DeviceDataType.ofName(name.trim());
            try (DeviceBuffer q = random(device, type, 1);
                    DeviceBuffer k = random(device, type, 2);
                    DeviceBuffer v = random(device, type, 3);
                    DeviceBuffer o = DeviceBuffer.allocate(device, ELEMENTS * 2);
                    DeviceBuffer l = DeviceBuffer.allocate(device, 16384L * 2048 / 64 * 4)) {
                for (int hd : dims) {
                    for (boolean causal : new boolean[] {false, true}) {
                        for (int len : lengths) {
                            idle(idleMs);
                            failures += run(device, type, hd, causal, len, q, k, v, o, lse ? l : null, reps, warmup)
                                    ? 0 : 1;
                        }
                    }
                }
            }
        }
        System.exit(failures == 0 ? 0 : 1);
    }

    /** Whether {@code v} is a well-formed value of option {@code opt}: comma-separated integers, or dtype names. */
    private static boolean isValue(String v, String opt) {
        String item = opt.equals("--dtypes") ? "[a-z0-9]+" : "[0-9]{1,9}";
        return v.matches(item + "(," + item + ")*");
    }

    /** Lets the GPU idle: every launch so far finished, then {@code ms} without work. */
    private static void idle(int ms) {
        if (ms <= 0) {
            return;
        }
        CudaRuntime.synchronize("FlashBench idle");
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while idling between shapes", e);
        }
    }

    private static DeviceBuffer random(int device, DeviceDataType type, long seed) {
        int block = 1 << 20;
        Random rnd = new Random(seed);
        short[] bits = new short[block];
        for (int i = 0; i < block; i++) {
            bits[i] = HostFloats.toBits(type, (float) rnd.nextGaussian());
        }
        DeviceBuffer b = DeviceBuffer.allocate(device, ELEMENTS * 2);
        for (long off = 0; off < ELEMENTS * 2; off += 2L * block) {
            b.copyFromHost(Pointer.to(bits), off, Math.min(2L * block, ELEMENTS * 2 - off));
        }
        return b;
    }

    private static boolean run(int device, DeviceDataType type, int hd, boolean causal, int len, DeviceBuffer q,
            DeviceBuffer k, DeviceBuffer v, DeviceBuffer o, DeviceBuffer lse, int reps, int warmup) {
        int batch = Math.max(1, 16384 / len);
        int heads = Math.max(1, 2048 / hd);
        String head = String.format(Locale.ROOT,
                "{\"impl\":\"flashdjl-java\",\"dtype\":\"%s\",\"hd\":%d,\"causal\":%s,\"L\":%d,\"batch\":%d,"
                        + "\"heads\":%d", type.shortName(), hd, causal, len, batch, heads);
        try {
            AttentionSpec spec = AttentionSpec.builder().optCausal(causal).optLayout(QkvLayout.BSHD).build();
            FlashAttention.Builder b = FlashAttention.builder()
                    .setQuery(q.view(type, batch, len, heads, hd))
                    .setKey(k.view(type, batch, len, heads, hd))
                    .setValue(v.view(type, batch, len, heads, hd))
                    .setOutput(o.view(type, batch, len, heads, hd))
                    .setSpec(spec);
            if (lse != null) {
                b.optLse(lse.view(DeviceDataType.FP32, batch, len, heads)); // bshd: the output without D
            }
            FlashAttention call = b.build();
            double[] ms = GpuTiming.sortedMs(call::run, reps, warmup,
                    call.kernelName(CudaRuntime.getDeviceInfo(device).computeCapability()));
            double median = GpuTiming.median(ms);
            double flops = 4.0 * batch * heads * (double) len * len * hd / (causal ? 2 : 1);
            double tflops = flops / (median * 1e-3) / 1e12;
            System.out.println(head + String.format(Locale.ROOT, ",\"ms\":%.4f,\"tflops\":%.2f,\"layout\":\"bshd\","
                    + "\"kernel\":\"%s\"}", median, tflops,
                    call.kernelName(CudaRuntime.getDeviceInfo(device).computeCapability())));
            System.out.flush();
            System.err.printf(Locale.ROOT, "%s hd%d causal=%s L=%d: %.3f ms (min %.3f, max %.3f), %.1f TFLOP/s%n",
                    type, hd, causal, len, median, ms[0], ms[reps - 1], tflops);
            return true;
        } catch (RuntimeException e) {
            System.out.println(head + ",\"error\":\"" + e.toString().replace("\\", "\\\\").replace("\"", "'")
                    + "\"}");
            System.err.println(type + " hd" + hd + " causal=" + causal + " L=" + len + " FAILED: " + e);
            if (!CudaRuntime.isAvailable()) {
                throw e;
            }
            return false;
        }
    }
}
