package org.flashdjl.tests.gpu;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.parallel.DeviceBuffer;
import org.flashdjl.ops.parallel.DeviceDataType;
import org.flashdjl.ops.parallel.DeviceP2POp;
import org.flashdjl.ops.parallel.Distributed;
import org.flashdjl.ops.parallel.NcclProcessGroup;
import org.flashdjl.ops.parallel.ProcessGroup;
import org.flashdjl.ops.parallel.RingSchedule;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.parallel.Work;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Context-parallel forward benchmark on 2/4 GPUs: ring (zigzag) and Ulysses for 32k-128k tokens, against one GPU.
 *
 * <p>Run {@code java -cp <jars> org.flashdjl.tests.gpu.ContextParallelBench --spawn 4} (the process starts one child
 * JVM per GPU with the torchrun environment and {@code NCCL_NVLS_ENABLE=0}), or start the ranks yourself with
 * RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT set. Options: {@code --lengths 32768,65536,131072},
 * {@code --heads 32} {@code --kv-heads 8} {@code --dim 128} {@code --iters 10} {@code --batch 1}.
 *
 * <p>It measures, per sequence length, on fp16 device buffers:
 *
 * <ul>
 *   <li>ring: the key/value circulation of {@link RingSchedule} (world - 1 batched send/recv steps of one zigzag
 *       shard each, double-buffered), and, when a {@link BlockKernel} is installed, the blocks' attention on the
 *       compute stream while the transfer runs;
 *   <li>Ulysses: the four all-to-alls (q, k, v to head shards; the output back), KV heads replicated to
 *       {@code lcm(Hkv, world)}, plus the local full-sequence attention of Hq / world heads with a kernel;
 *   <li>one GPU: the full attention with a kernel (rank 0 alone).
 * </ul>
 *
 * <p>The attention kernel on raw device buffers comes from the CUDA package ({@code flash} backend), not on this
 * branch yet: implement {@link BlockKernel} there and list it in
 * {@code META-INF/services/org.flashdjl.tests.gpu.ContextParallelBench$BlockKernel}. Without one the compute columns
 * read {@code n/a} and the communication columns are still measured (they bound the overlap: ring attention hides
 * its transfers when each step's compute takes longer than its transfer).
 */
public final class ContextParallelBench {

    /** Attention of one block on raw device buffers (bshd fp16 q/k/v, causal by positions), on the legacy stream. */
    public interface BlockKernel {
        /**
         * Returns the kernel's name for the report.
         *
         * @return the name
         */
        String name();

        /**
         * Attends a query block to a key/value block and merges into the running (out, lse) state.
         *
         * @param q queries [B, qLen, hq, d] fp16
         * @param qLen query rows
         * @param qPos position of query row 0 in the full sequence
         * @param k keys [B, kLen, hkv, d] fp16
         * @param v values [B, kLen, hkv, d] fp16
         * @param kLen keys
         * @param kPos index of key 0 in the full sequence
         * @param batch B
         * @param hq query heads
         * @param hkv key/value heads
         * @param d head dim
         * @param out running output [B, qLen, hq, d] fp32
         * @param lse running LSE [B, hq, qLen] fp32
         * @param first true to overwrite the state instead of merging
         */
        void attend(DeviceBuffer q, long qLen, long qPos, DeviceBuffer k, DeviceBuffer v, long kLen, long kPos,
                int batch, int hq, int hkv, int d, DeviceBuffer out, DeviceBuffer lse, boolean first);

        /** Waits for the kernels launched so far. */
        void synchronize();
    }

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
        long[] lengths = Arrays.stream(opts.getOrDefault("lengths", "32768,65536,131072").split(","))
                .mapToLong(Long::parseLong).toArray();
        int batch = Integer.parseInt(opts.getOrDefault("batch", "1"));
        int hq = Integer.parseInt(opts.getOrDefault("heads", "32"));
        int hkv = Integer.parseInt(opts.getOrDefault("kv-heads", "8"));
        int d = Integer.parseInt(opts.getOrDefault("dim", "128"));
        int iters = Integer.parseInt(opts.getOrDefault("iters", "10"));
        ProcessGroup g = Distributed.builder().optTimeout(Duration.ofMinutes(5)).init();
        if (!(g instanceof NcclProcessGroup)) {
            throw new IllegalStateException("run with WORLD_SIZE >= 2 (or --spawn N): got " + g);
        }
        NcclProcessGroup group = (NcclProcessGroup) g;
        JCudaDriver.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        CUdevice dev = new CUdevice();
        JCudaDriver.cuDeviceGet(dev, group.device());
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
        JCudaDriver.cuCtxSetCurrent(ctx);
        BlockKernel kernel = loadKernel();
        if (kernel != null && batch != 1) {
            throw new IllegalArgumentException("--batch must be 1 with a kernel: ring blocks are slices along the"
                    + " sequence of [B, L, H, D] buffers, contiguous only for B = 1");
        }
        int w = group.size();
        if (group.rank() == 0) {
            System.out.println("# context-parallel forward, world " + w + ", B=" + batch + " Hq=" + hq + " Hkv=" + hkv
                    + " d=" + d + " fp16 causal, kernel " + (kernel == null ? "none (comm only)" : kernel.name())
                    + ", median of " + iters);
            System.out.println("| method | world | tokens | comm ms | compute ms | forward ms |");
            System.out.println("|---|---|---|---|---|---|");
        }
        for (long len : lengths) {
            ring(group, kernel, len, batch, hq, hkv, d, iters);
            ulysses(group, kernel, len, batch, hq, hkv, d, iters);
            if (kernel != null && group.rank() == 0) {
                single(kernel, len, batch, hq, hkv, d, iters);
            }
            group.barrier();
        }
        group.close();
        Runtime.getRuntime().halt(0);
    }

    private static void ring(NcclProcessGroup g, BlockKernel kernel, long len, int batch, int hq, int hkv, int d,
            int iters) {
        int w = g.size();
        int rank = g.rank();
        long[] lens = new long[w];
        long max = 0;
        for (int r = 0; r < w; r++) {
            lens[r] = SequenceSharding.ZIGZAG.localLength(len, r, w);
            max = Math.max(max, lens[r]);
        }
        RingSchedule plan = RingSchedule.create(AttentionSpec.builder().optCausal(true).build(), lens, lens,
                SequenceSharding.ZIGZAG);
        long kvPerToken = (long) batch * hkv * d;
        List<CUdeviceptr> mem = new ArrayList<>();
        DeviceBuffer[] k = {alloc(mem, max * kvPerToken, DeviceDataType.FLOAT16),
            alloc(mem, max * kvPerToken, DeviceDataType.FLOAT16)};
        DeviceBuffer[] v = {alloc(mem, max * kvPerToken, DeviceDataType.FLOAT16),
            alloc(mem, max * kvPerToken, DeviceDataType.FLOAT16)};
        DeviceBuffer q = alloc(mem, lens[rank] * batch * hq * d, DeviceDataType.FLOAT16);
        DeviceBuffer out = alloc(mem, lens[rank] * batch * hq * d, DeviceDataType.FLOAT32);
        DeviceBuffer lse = alloc(mem, lens[rank] * batch * hq, DeviceDataType.FLOAT32);
        double[] comm = new double[iters];
        double[] total = new double[iters];
        int next = (rank + 1) % w;
        int prev = (rank - 1 + w) % w;
        for (int it = -1; it < iters; it++) { // iteration -1 warms up
            g.barrier();
            long t0 = System.nanoTime();
            long commNanos = 0;
            int cur = 0;
            boolean[] first = {true, true};
            for (int step = 0; step < w; step++) {
                Work transfer = null;
                long tc = System.nanoTime();
                if (step < w - 1) {
                    long n = lens[plan.source(rank, step)] * kvPerToken;
                    long nn = lens[plan.source(rank, step + 1)] * kvPerToken;
                    transfer = g.batchIsendIrecv(DeviceP2POp.send(k[cur].slice(0, n), next),
                            DeviceP2POp.send(v[cur].slice(0, n), next), DeviceP2POp.recv(k[1 - cur].slice(0, nn), prev),
                            DeviceP2POp.recv(v[1 - cur].slice(0, nn), prev));
                }
                commNanos += System.nanoTime() - tc;
                if (kernel != null) {
                    for (RingSchedule.Block b : plan.blocks(rank, step)) {
                        int piece = b.queryPiece();
                        kernel.attend(q.slice(b.queryLocalStart() * batch * hq * d, b.queryLength() * batch * hq * d),
                                b.queryLength(), b.queryPosition(),
                                k[cur].slice(b.keyLocalStart() * kvPerToken, b.keyLength() * kvPerToken),
                                v[cur].slice(b.keyLocalStart() * kvPerToken, b.keyLength() * kvPerToken),
                                b.keyLength(), b.keyPosition(), batch, hq, hkv, d,
                                out.slice(b.queryLocalStart() * batch * hq * d, b.queryLength() * batch * hq * d),
                                lse.slice(b.queryLocalStart() * batch * hq, b.queryLength() * batch * hq),
                                first[piece]);
                        first[piece] = false;
                    }
                    kernel.synchronize();
                }
                if (transfer != null) {
                    tc = System.nanoTime();
                    transfer.await();
                    commNanos += System.nanoTime() - tc;
                    cur = 1 - cur;
                }
            }
            if (it >= 0) {
                comm[it] = commNanos / 1e6;
                total[it] = (System.nanoTime() - t0) / 1e6;
            }
        }
        report(g, "ring zigzag", len, median(comm), kernel == null ? Double.NaN : median(total) - median(comm),
                kernel == null ? Double.NaN : median(total));
        free(mem);
    }

    private static void ulysses(NcclProcessGroup g, BlockKernel kernel, long len, int batch, int hq, int hkv, int d,
            int iters) {
        int w = g.size();
        if (hq % w != 0) {
            if (g.rank() == 0) {
                System.out.println("| ulysses | " + w + " | " + len + " | heads " + hq + " do not divide by " + w
                        + " | | |");
            }
            return;
        }
        long shard = len / w; // equal shards (lengths divisible by the world size)
        int hkvRep = hkv * (w / gcd(hkv, w));
        List<CUdeviceptr> mem = new ArrayList<>();
        long qCount = shard * batch * hq * d;
        long kvCount = shard * batch * hkvRep * d;
        DeviceBuffer qs = alloc(mem, qCount, DeviceDataType.FLOAT16);
        DeviceBuffer qr = alloc(mem, qCount, DeviceDataType.FLOAT16);
        DeviceBuffer ks = alloc(mem, kvCount, DeviceDataType.FLOAT16);
        DeviceBuffer kr = alloc(mem, kvCount, DeviceDataType.FLOAT16);
        DeviceBuffer vs = alloc(mem, kvCount, DeviceDataType.FLOAT16);
        DeviceBuffer vr = alloc(mem, kvCount, DeviceDataType.FLOAT16);
        DeviceBuffer out = alloc(mem, len * batch * (hq / w) * d, DeviceDataType.FLOAT32);
        DeviceBuffer lse = alloc(mem, len * batch * (hq / w), DeviceDataType.FLOAT32);
        double[] comm = new double[iters];
        double[] total = new double[iters];
        for (int it = -1; it < iters; it++) {
            g.barrier();
            long t0 = System.nanoTime();
            g.allToAll(qs, qr);
            g.allToAll(ks, kr);
            g.allToAll(vs, vr);
            long t1 = System.nanoTime();
            if (kernel != null) {
                kernel.attend(qr, len, 0, kr, vr, len, 0, batch, hq / w, hkvRep / w, d, out, lse, true);
                kernel.synchronize();
            }
            long t2 = System.nanoTime();
            g.allToAll(qr, qs); // the output travels back with q's size (fp16)
            long t3 = System.nanoTime();
            if (it >= 0) {
                comm[it] = ((t1 - t0) + (t3 - t2)) / 1e6;
                total[it] = (t3 - t0) / 1e6;
            }
        }
        report(g, "ulysses", len, median(comm), kernel == null ? Double.NaN : median(total) - median(comm),
                kernel == null ? Double.NaN : median(total));
        free(mem);
    }

    private static void single(BlockKernel kernel, long len, int batch, int hq, int hkv, int d, int iters) {
        List<CUdeviceptr> mem = new ArrayList<>();
        DeviceBuffer q = alloc(mem, len * batch * hq * d, DeviceDataType.FLOAT16);
        DeviceBuffer k = alloc(mem, len * batch * hkv * d, DeviceDataType.FLOAT16);
        DeviceBuffer v = alloc(mem, len * batch * hkv * d, DeviceDataType.FLOAT16);
        DeviceBuffer out = alloc(mem, len * batch * hq * d, DeviceDataType.FLOAT32);
        DeviceBuffer lse = alloc(mem, len * batch * hq, DeviceDataType.FLOAT32);
        double[] t = new double[iters];
        for (int it = -1; it < iters; it++) {
            long t0 = System.nanoTime();
            kernel.attend(q, len, 0, k, v, len, 0, batch, hq, hkv, d, out, lse, true);
            kernel.synchronize();
            if (it >= 0) {
                t[it] = (System.nanoTime() - t0) / 1e6;
            }
        }
        System.out.printf("| one GPU | 1 | %d | - | %.2f | %.2f |%n", len, median(t), median(t));
        free(mem);
    }

    // Rank 0 prints the slowest rank's numbers.
    private static void report(NcclProcessGroup g, String method, long len, double comm, double compute,
            double total) {
        long[] all = g.allGatherLongs(Double.doubleToLongBits(comm), Double.doubleToLongBits(compute),
                Double.doubleToLongBits(total));
        if (g.rank() != 0) {
            return;
        }
        double[] worst = {0, 0, 0};
        for (int r = 0; r < g.size(); r++) {
            for (int i = 0; i < 3; i++) {
                worst[i] = Math.max(worst[i], Double.longBitsToDouble(all[3 * r + i]));
            }
        }
        System.out.printf("| %s | %d | %d | %.2f | %s | %s |%n", method, g.size(), len, worst[0], fmt(worst[1]),
                fmt(worst[2]));
    }

    private static String fmt(double x) {
        return Double.isNaN(x) ? "n/a" : String.format("%.2f", x);
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length == 0 ? Double.NaN : s[s.length / 2];
    }

    private static DeviceBuffer alloc(List<CUdeviceptr> mem, long count, DeviceDataType type) {
        NcclWorker.DevicePointer p = new NcclWorker.DevicePointer();
        JCudaDriver.cuMemAlloc(p, Math.max(1, count) * type.bytes());
        JCudaDriver.cuMemsetD8(p, (byte) 0, Math.max(1, count) * type.bytes());
        mem.add(p);
        return new DeviceBuffer(p.address(), count, type);
    }

    private static void free(List<CUdeviceptr> mem) {
        for (CUdeviceptr p : mem) {
            JCudaDriver.cuMemFree(p);
        }
    }

    private static int gcd(int a, int b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    private static BlockKernel loadKernel() {
        Iterator<BlockKernel> it = ServiceLoader.load(BlockKernel.class).iterator();
        return it.hasNext() ? it.next() : null;
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
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        List<Process> procs = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                    ContextParallelBench.class.getName()));
            cmd.addAll(childArgs);
            ProcessBuilder pb = new ProcessBuilder(cmd);
            Map<String, String> env = pb.environment();
            env.put("RANK", Integer.toString(r));
            env.put("WORLD_SIZE", Integer.toString(world));
            env.put("LOCAL_RANK", Integer.toString(r));
            env.put("MASTER_ADDR", "127.0.0.1");
            env.put("MASTER_PORT", Integer.toString(port));
            env.put("NCCL_NVLS_ENABLE", "0");
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
