package org.flashdjl.tests.gpu;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.parallel.nccl.DeviceP2POp;
import org.flashdjl.ops.parallel.DeviceRingAttention;
import org.flashdjl.ops.parallel.DeviceUlyssesAttention;
import org.flashdjl.ops.parallel.nccl.Distributed;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.parallel.group.Work;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Context-parallel forward benchmark on several GPUs: the device ring ({@link DeviceRingAttention}, zigzag, causal)
 * and Ulysses ({@link DeviceUlyssesAttention}) against one GPU running the full sequence with the same flash
 * kernel, for 32k-128k total tokens.
 *
 * <p>Run {@code java -cp <jars> org.flashdjl.tests.gpu.ContextParallelBench --spawn 2} (one child JVM per GPU with
 * the torchrun environment and {@code NCCL_NVLS_ENABLE=0}), or start the ranks yourself with
 * RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT set. Options: {@code --lengths 32768,65536,131072},
 * {@code --heads 32}, {@code --kv-heads 8,32} (one table row set per value), {@code --dim 128}, {@code --iters 5},
 * {@code --causal true}.
 *
 * <p>Per length, fp16 bshd B = 1, times are wall clock per forward after a device synchronize and a barrier
 * (median of the iterations, the slowest rank): one GPU (every rank runs the full sequence on its own GPU at the
 * same time; rank 0's time), ring with overlap, ring with each transfer awaited before the compute (no overlap),
 * the ring's key/value circulation alone, and Ulysses. {@code % ideal = t1 / (world * t_world)}.
 */
public final class ContextParallelBench {

    private ContextParallelBench() {}

    /**
     * Runs the benchmark.
     *
     * @param args options, see the class comment
     * @throws Exception on failure
     */
    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parse(args);
        if (opts.containsKey("spawn")) {
            System.exit(spawn(Integer.parseInt(opts.get("spawn")), args));
        }
        Watchdog.start("ContextParallelBench");
        long[] lengths = Arrays.stream(opts.getOrDefault("lengths", "32768,65536,131072").split(","))
                .mapToLong(Long::parseLong).toArray();
        int hq = Integer.parseInt(opts.getOrDefault("heads", "32"));
        int[] kvHeads = Arrays.stream(opts.getOrDefault("kv-heads", "8").split(",")).mapToInt(Integer::parseInt)
                .toArray();
        int d = Integer.parseInt(opts.getOrDefault("dim", "128"));
        int iters = Integer.parseInt(opts.getOrDefault("iters", "5"));
        boolean causal = Boolean.parseBoolean(opts.getOrDefault("causal", "true"));
        ProcessGroup g = Distributed.builder().optTimeout(Duration.ofMinutes(3)).init();
        if (!(g instanceof NcclProcessGroup)) {
            throw new IllegalStateException("run with WORLD_SIZE >= 2 (or --spawn N): got " + g);
        }
        NcclProcessGroup group = (NcclProcessGroup) g;
        int w = group.size();
        CudaRuntime.bind(group.device());
        if (group.rank() == 0) {
            System.out.println("# context-parallel forward on " + CudaRuntime.getDeviceInfo(group.device()).name()
                    + ", world " + w + ", fp16 bshd B=1, Hq=" + hq + " d=" + d + (causal ? " causal" : " non-causal")
                    + ", zigzag; median of " + iters + " (slowest rank); comm stream non-blocking: "
                    + group.isCommunicationStreamNonBlocking());
            System.out.println("| Hq/Hkv | tokens | 1 GPU ms | 1 GPU TFLOP/s | ring ms | ring % ideal | ring no-overlap"
                    + " ms | ring kv comm ms | ulysses ms | ulysses % ideal |");
            System.out.println("|---|---|---|---|---|---|---|---|---|---|");
        }
        try (DeviceRingAttention ring = new DeviceRingAttention(group, SequenceSharding.ZIGZAG, true);
                DeviceUlyssesAttention ulysses = new DeviceUlyssesAttention(group, SequenceSharding.ZIGZAG)) {
            for (int hkv : kvHeads) {
                for (long len : lengths) {
                    row(group, ring, ulysses, len, hq, hkv, d, iters, causal);
                }
            }
        }
        group.close();
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    private static void row(NcclProcessGroup g, DeviceRingAttention ring, DeviceUlyssesAttention ulysses, long len,
            int hq, int hkv, int d, int iters, boolean causal) {
        int w = g.size();
        int rank = g.rank();
        int dev = g.device();
        AttentionSpec spec = AttentionSpec.builder().optCausal(causal).optLayout(QkvLayout.BSHD).build();
        List<DeviceBuffer> mem = new ArrayList<>();
        double t1;
        try {
            // one GPU, full sequence
            DeviceTensor q = tensor(mem, dev, len, hq, d);
            DeviceTensor k = tensor(mem, dev, len, hkv, d);
            DeviceTensor v = tensor(mem, dev, len, hkv, d);
            DeviceTensor o = tensor(mem, dev, len, hq, d);
            DeviceBuffer lb = DeviceBuffer.allocate(dev, 4L * len * hq);
            mem.add(lb);
            DeviceTensor lse = lb.view(DeviceDataType.FP32, 1, len, hq); // bshd: the output without D
            FlashAttention fa = FlashAttention.builder().setQuery(q).setKey(k).setValue(v).setOutput(o).optLse(lse)
                    .setSpec(spec).build();
            t1 = time(g, iters, fa::run);
        } finally {
            free(mem, dev);
        }
        long local = SequenceSharding.ZIGZAG.localLength(len, rank, w);
        double tRing;
        double tSerial;
        double tComm;
        try {
            DeviceTensor q = tensor(mem, dev, local, hq, d);
            DeviceTensor k = tensor(mem, dev, local, hkv, d);
            DeviceTensor v = tensor(mem, dev, local, hkv, d);
            DeviceTensor o = tensor(mem, dev, local, hq, d);
            ring.setOverlap(true);
            tRing = time(g, iters, () -> ring.forward(q, k, v, o, null, spec));
            ring.setOverlap(false);
            tSerial = time(g, iters, () -> ring.forward(q, k, v, o, null, spec));
            ring.setOverlap(true);
            DeviceTensor k1 = tensor(mem, dev, local + 1, hkv, d);
            DeviceTensor v1 = tensor(mem, dev, local + 1, hkv, d);
            DeviceTensor k2 = tensor(mem, dev, local + 1, hkv, d);
            DeviceTensor v2 = tensor(mem, dev, local + 1, hkv, d);
            tComm = time(g, iters, () -> circulate(g, len, k1, v1, k2, v2));
        } finally {
            free(mem, dev);
        }
        double tUly = Double.NaN;
        if (hq % w == 0 && hkv % w == 0) {
            try {
                DeviceTensor q = tensor(mem, dev, local, hq, d);
                DeviceTensor k = tensor(mem, dev, local, hkv, d);
                DeviceTensor v = tensor(mem, dev, local, hkv, d);
                DeviceTensor o = tensor(mem, dev, local, hq, d);
                tUly = time(g, iters, () -> ulysses.forward(q, k, v, o, null, spec));
            } finally {
                free(mem, dev);
            }
        }
        double[] worst = worst(g, t1, tRing, tSerial, tComm, tUly);
        if (rank == 0) {
            double flops = 4.0 * len * len * hq * d * (causal ? 0.5 : 1.0);
            System.out.printf(Locale.ROOT, "| %d/%d | %d | %.2f | %.0f | %.2f | %.0f%% | %.2f | %.2f | %s | %s |%n",
                    hq, hkv, len, t1, flops / (t1 * 1e9), worst[1], 100 * t1 / (w * worst[1]), worst[2], worst[3],
                    Double.isNaN(worst[4]) ? "n/a" : String.format(Locale.ROOT, "%.2f", worst[4]),
                    Double.isNaN(worst[4]) ? "n/a" : String.format(Locale.ROOT, "%.0f%%", 100 * t1 / (w * worst[4])));
        }
    }

    // The ring's key/value circulation alone: world - 1 double-buffered exchanges of one shard.
    private static void circulate(NcclProcessGroup g, long len, DeviceTensor k, DeviceTensor v, DeviceTensor k2,
            DeviceTensor v2) {
        int w = g.size();
        int rank = g.rank();
        DeviceTensor[] ks = {k, k2};
        DeviceTensor[] vs = {v, v2};
        int cur = 0;
        for (int step = 0; step < w - 1; step++) {
            long n = SequenceSharding.ZIGZAG.localLength(len, Math.floorMod(rank - step, w), w);
            long nn = SequenceSharding.ZIGZAG.localLength(len, Math.floorMod(rank - step - 1, w), w);
            long per = k.size(2) * k.size(3);
            Work t = g.batchIsendIrecv(DeviceP2POp.send(buffer(ks[cur], n * per), (rank + 1) % w),
                    DeviceP2POp.send(buffer(vs[cur], n * per), (rank + 1) % w),
                    DeviceP2POp.recv(buffer(ks[1 - cur], nn * per), (rank - 1 + w) % w),
                    DeviceP2POp.recv(buffer(vs[1 - cur], nn * per), (rank - 1 + w) % w));
            t.await();
            cur = 1 - cur;
        }
    }

    private static org.flashdjl.ops.parallel.nccl.NcclBuffer buffer(DeviceTensor t, long count) {
        return new org.flashdjl.ops.parallel.nccl.NcclBuffer(t.getAddress(), count,
                DeviceDataType.FP16);
    }

    // Median wall time of a forward (after a barrier, until the device is idle), ms; one warm-up.
    private static double time(NcclProcessGroup g, int iters, Runnable forward) {
        double[] t = new double[iters];
        for (int it = -1; it < iters; it++) {
            CudaRuntime.bind(g.device());
            CudaRuntime.synchronize("bench");
            g.barrier();
            CudaRuntime.bind(g.device());
            long t0 = System.nanoTime();
            forward.run();
            CudaRuntime.bind(g.device());
            CudaRuntime.synchronize("bench");
            if (it >= 0) {
                t[it] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }

    // Per value, the maximum over the ranks.
    private static double[] worst(NcclProcessGroup g, double... x) {
        long[] bits = new long[x.length];
        for (int i = 0; i < x.length; i++) {
            bits[i] = Double.doubleToLongBits(x[i]);
        }
        long[] all = g.allGatherLongs(bits);
        double[] out = new double[x.length];
        Arrays.fill(out, Double.NEGATIVE_INFINITY);
        for (int r = 0; r < g.size(); r++) {
            for (int i = 0; i < x.length; i++) {
                double y = Double.longBitsToDouble(all[r * x.length + i]);
                out[i] = Double.isNaN(y) || Double.isNaN(out[i]) ? Double.NaN : Math.max(out[i], y);
            }
        }
        return out;
    }

    // A [1, len, heads, d] fp16 tensor filled with small values (0.0999 = 0x2e66), not NaN and not zero.
    private static DeviceTensor tensor(List<DeviceBuffer> mem, int dev, long len, int heads, int d) {
        long bytes = 2L * len * heads * d;
        DeviceBuffer b = DeviceBuffer.allocate(dev, bytes);
        mem.add(b);
        b.fill16((short) 0x2e66);
        return b.view(DeviceDataType.FP16, 1, len, heads, d);
    }

    private static void free(List<DeviceBuffer> mem, int dev) {
        CudaRuntime.bind(dev);
        CudaRuntime.synchronize("bench free");
        for (DeviceBuffer b : mem) {
            b.close();
        }
        mem.clear();
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> m = new java.util.HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("options are --name value pairs, got " + Arrays.toString(args));
            }
            m.put(args[i].substring(2), args[++i]);
        }
        return m;
    }

    // Starts one child per GPU with the torchrun environment and relays rank 0's output.
    private static int spawn(int world, String[] args) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<String> childArgs = new ArrayList<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].equals("--spawn")) {
                childArgs.add(args[i]);
                childArgs.add(args[i + 1]);
            }
        }
        List<Process> procs = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ProcessBuilder pb = RankProcess.builder(r, world, port,
                    List.of("-Dflashdjl.watchdog.s=" + System.getProperty("flashdjl.watchdog.s", "")),
                    ContextParallelBench.class, childArgs);
            pb.redirectErrorStream(true);
            if (r != 0) {
                pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
            }
            procs.add(pb.start());
        }
        try (BufferedReader in = new BufferedReader(new InputStreamReader(procs.get(0).getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                System.out.println(line);
            }
        }
        int code = 0;
        for (Process p : procs) {
            code = Math.max(code, p.waitFor());
        }
        return code;
    }
}
