package org.flashdjl.tests.gpu;

import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.parallel.nccl.NcclBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.parallel.nccl.DeviceP2POp;
import org.flashdjl.ops.parallel.nccl.Distributed;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.ReduceOp;
import org.flashdjl.ops.parallel.RingSchedule;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.parallel.group.Work;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One rank of the two-process NCCL checks, started by {@link NcclLauncher} with the torchrun environment (RANK,
 * WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, NCCL_NVLS_ENABLE=0). Buffers are raw JCuda allocations on the
 * rank's GPU; every result is checked against host arithmetic.
 *
 * <p>Usage: {@code NcclWorker collectives|kill|attention|attention-quick [timeoutSeconds]}.
 *
 * <ul>
 *   <li>{@code collectives}: all-reduce (sum fp32, max fp64), all-gather (int64), ring exchange of key/value shards
 *       following {@link RingSchedule} with double buffers, all-to-all (equal and uneven chunks), allGatherLongs,
 *       barrier. Prints {@code NCCL_WORKER_OK rank r} and exits 0, or exits 1 naming the failed check.
 *   <li>{@code kill}: joins, passes a barrier, prints {@code READY rank r}; rank 0 then keeps all-reducing while
 *       the launcher kills rank 1, and must exit 3 with the timeout error ({@code NCCL_WORKER_ERROR ...}).
 *   <li>{@code attention}: ring and Ulysses attention on the GPUs against single-GPU flash attention
 *       ({@link DeviceAttentionCheck}); {@code attention-quick}: only its small cases.
 * </ul>
 */
public final class NcclWorker {

    /** Exit code when a check fails. */
    public static final int EXIT_CHECK_FAILED = 1;
    /** Exit code for unexpected errors. */
    public static final int EXIT_ERROR = 2;
    /** Exit code for a process-group failure (timeout, dead peer). */
    public static final int EXIT_GROUP_FAILED = 3;

    private final NcclProcessGroup group;
    private final int rank;
    private final int world;
    private final Map<Long, CUdeviceptr> allocations = new HashMap<>();

    private NcclWorker(NcclProcessGroup group) {
        this.group = group;
        this.rank = group.rank();
        this.world = group.size();
    }

    /**
     * Runs one rank.
     *
     * @param args {@code collectives|kill|attention|attention-quick [timeoutSeconds]}
     */
    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "collectives";
        Duration timeout = Duration.ofSeconds(args.length > 1 ? Long.parseLong(args[1]) : 60);
        Watchdog.start("NcclWorker " + mode);
        int code;
        try {
            code = run(mode, timeout);
        } catch (ProcessGroupException e) {
            System.out.println("NCCL_WORKER_ERROR " + e.getMessage());
            e.printStackTrace(System.out);
            code = EXIT_GROUP_FAILED;
        } catch (Throwable t) {
            System.out.println("NCCL_WORKER_ERROR unexpected: " + t);
            t.printStackTrace(System.out);
            code = EXIT_ERROR;
        }
        System.out.flush();
        // halt: after an abort NCCL's own threads must not keep the process alive or block in exit hooks
        Runtime.getRuntime().halt(code);
    }

    private static int run(String mode, Duration timeout) throws Exception {
        ProcessGroup g = Distributed.builder().optTimeout(timeout).init();
        if (!(g instanceof NcclProcessGroup)) {
            System.out.println("NCCL_WORKER_ERROR expected an NCCL group, got " + g);
            return EXIT_ERROR;
        }
        NcclProcessGroup group = (NcclProcessGroup) g;
        if (mode.startsWith("attention")) {
            int code = DeviceAttentionCheck.run(group, mode.equals("attention-quick"));
            group.close();
            return code;
        }
        JCudaDriver.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        CUdevice dev = new CUdevice();
        JCudaDriver.cuDeviceGet(dev, group.device());
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
        JCudaDriver.cuCtxSetCurrent(ctx);
        NcclWorker w = new NcclWorker(group);
        if ("kill".equals(mode)) {
            return w.killMode();
        }
        if (!"collectives".equals(mode)) {
            System.out.println("NCCL_WORKER_ERROR unknown mode '" + mode + "'; allowed: collectives, kill, attention,"
                    + " attention-quick");
            return EXIT_ERROR;
        }
        int code = w.collectives();
        w.free();
        group.close();
        return code;
    }

    private int killMode() throws InterruptedException {
        group.barrier();
        System.out.println("READY rank " + rank);
        System.out.flush();
        if (rank != 0) {
            Thread.sleep(Long.MAX_VALUE); // the launcher kills this rank
        }
        NcclBuffer x = alloc(1 << 16, DeviceDataType.FP32);
        long start = System.nanoTime();
        for (int i = 0; i < 1_000_000; i++) {
            group.allReduce(x, ReduceOp.SUM); // hangs once rank 1 is gone: must time out
            Thread.sleep(200);
            if (i % 10 == 0) {
                System.out.println("rank 0 all-reduce " + i + " ok after " + (System.nanoTime() - start) / 1_000_000
                        + " ms");
            }
        }
        return 0;
    }

    private int collectives() {
        List<String> failures = new ArrayList<>();
        check(failures, "allReduce SUM fp32", this::allReduceSum);
        check(failures, "allReduce MAX fp64", this::allReduceMax);
        check(failures, "allGather int64", this::allGather);
        check(failures, "ring exchange (zigzag kv shards, double buffers)", this::ringExchange);
        check(failures, "allToAll equal chunks", this::allToAllEqual);
        check(failures, "allToAll uneven chunks", this::allToAllUneven);
        check(failures, "allGatherLongs + barrier", this::metadata);
        if (failures.isEmpty()) {
            System.out.println("NCCL_WORKER_OK rank " + rank);
            return 0;
        }
        System.out.println("NCCL_WORKER_FAILED rank " + rank + ": " + failures);
        return EXIT_CHECK_FAILED;
    }

    /** One check: returns null when it passed, else what was wrong. */
    private interface Check {
        String run();
    }

    private void check(List<String> failures, String name, Check check) {
        long t0 = System.nanoTime();
        String problem = check.run();
        long us = (System.nanoTime() - t0) / 1000;
        if (problem == null) {
            System.out.println("PASS rank " + rank + " " + name + " (" + us + " us)");
        } else {
            System.out.println("FAIL rank " + rank + " " + name + ": " + problem);
            failures.add(name);
        }
    }

    private String allReduceSum() {
        int n = 1 << 20;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (rank + 1) * (i % 97) * 0.25f;
        }
        NcclBuffer b = upload(x);
        group.allReduce(b, ReduceOp.SUM);
        float[] got = downloadFloats(b);
        float ranks = world * (world + 1) / 2f;
        for (int i = 0; i < n; i++) {
            if (got[i] != ranks * (i % 97) * 0.25f) {
                return "element " + i + " = " + got[i] + ", expected " + ranks * (i % 97) * 0.25f;
            }
        }
        return null;
    }

    private String allReduceMax() {
        int n = 1000;
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = Math.sin(i + 13.0 * rank);
        }
        NcclBuffer b = upload(x);
        group.allReduce(b, ReduceOp.MAX);
        double[] got = new double[n];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(got), ptr(b), 8L * n);
        for (int i = 0; i < n; i++) {
            double expected = Double.NEGATIVE_INFINITY;
            for (int r = 0; r < world; r++) {
                expected = Math.max(expected, Math.sin(i + 13.0 * r));
            }
            if (got[i] != expected) {
                return "element " + i + " = " + got[i] + ", expected " + expected;
            }
        }
        return null;
    }

    private String allGather() {
        int n = 4096;
        long[] mine = new long[n];
        for (int i = 0; i < n; i++) {
            mine[i] = rank * 1_000_000L + i;
        }
        NcclBuffer send = upload(mine);
        NcclBuffer recv = alloc((long) n * world, DeviceDataType.INT64);
        group.allGather(send, recv);
        long[] got = new long[n * world];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(got), ptr(recv), 8L * got.length);
        for (int r = 0; r < world; r++) {
            for (int i = 0; i < n; i++) {
                if (got[r * n + i] != r * 1_000_000L + i) {
                    return "rank " + r + " element " + i + " = " + got[r * n + i];
                }
            }
        }
        return null;
    }

    // Key/value shards travel as in ring attention: at step s this rank must hold rank (r - s) mod w's shard.
    private String ringExchange() {
        long total = 4099; // odd: zigzag shards differ in length
        int heads = 8;
        int dim = 64;
        long[] lens = new long[world];
        for (int r = 0; r < world; r++) {
            lens[r] = SequenceSharding.ZIGZAG.localLength(total, r, world);
        }
        RingSchedule plan = RingSchedule.create(AttentionSpec.builder().optCausal(true).build(), lens, lens,
                SequenceSharding.ZIGZAG);
        long maxLen = 0;
        for (long l : lens) {
            maxLen = Math.max(maxLen, l);
        }
        long per = maxLen * heads * dim;
        NcclBuffer[] k = {alloc(per, DeviceDataType.FP32), alloc(per, DeviceDataType.FP32)};
        NcclBuffer[] v = {alloc(per, DeviceDataType.FP32), alloc(per, DeviceDataType.FP32)};
        float[] kv = shardValues(rank, lens[rank] * heads * dim, 0);
        JCudaDriver.cuMemcpyHtoD(ptr(k[0]), Pointer.to(kv), 4L * kv.length);
        kv = shardValues(rank, lens[rank] * heads * dim, 0.5f);
        JCudaDriver.cuMemcpyHtoD(ptr(v[0]), Pointer.to(kv), 4L * kv.length);
        int next = (rank + 1) % world;
        int prev = (rank - 1 + world) % world;
        int cur = 0;
        for (int step = 0; step < world; step++) {
            int src = plan.source(rank, step);
            long count = lens[src] * heads * dim;
            Work transfer = null;
            if (step < world - 1) {
                long nextCount = lens[plan.source(rank, step + 1)] * heads * dim;
                transfer = group.batchIsendIrecv(DeviceP2POp.send(k[cur].slice(0, count), next),
                        DeviceP2POp.send(v[cur].slice(0, count), next),
                        DeviceP2POp.recv(k[1 - cur].slice(0, nextCount), prev),
                        DeviceP2POp.recv(v[1 - cur].slice(0, nextCount), prev));
            }
            // (ring attention computes on k[cur], v[cur] here while the transfer runs)
            float[] gotK = new float[(int) count];
            float[] gotV = new float[(int) count];
            JCudaDriver.cuMemcpyDtoH(Pointer.to(gotK), ptr(k[cur]), 4L * count);
            JCudaDriver.cuMemcpyDtoH(Pointer.to(gotV), ptr(v[cur]), 4L * count);
            float[] expK = shardValues(src, count, 0);
            float[] expV = shardValues(src, count, 0.5f);
            for (int i = 0; i < count; i++) {
                if (gotK[i] != expK[i] || gotV[i] != expV[i]) {
                    return "step " + step + ": element " + i + " of the shard from rank " + src + " is k=" + gotK[i]
                            + " v=" + gotV[i] + ", expected " + expK[i] + " / " + expV[i];
                }
            }
            if (transfer != null) {
                transfer.await();
                cur = 1 - cur;
            }
        }
        return null;
    }

    private static float[] shardValues(int src, long count, float offset) {
        float[] x = new float[(int) count];
        for (int i = 0; i < x.length; i++) {
            x[i] = src * 10_000 + (i % 5003) + offset;
        }
        return x;
    }

    private String allToAllEqual() {
        int c = 1000;
        float[] send = new float[c * world];
        for (int j = 0; j < world; j++) {
            for (int i = 0; i < c; i++) {
                send[j * c + i] = rank * 100 + j + i * 1e-3f;
            }
        }
        NcclBuffer s = upload(send);
        NcclBuffer r = alloc((long) c * world, DeviceDataType.FP32);
        group.allToAll(s, r);
        float[] got = downloadFloats(r);
        for (int i = 0; i < world; i++) {
            for (int e = 0; e < c; e++) {
                float expected = i * 100 + rank + e * 1e-3f;
                if (got[i * c + e] != expected) {
                    return "chunk from rank " + i + " element " + e + " = " + got[i * c + e] + ", expected " + expected;
                }
            }
        }
        return null;
    }

    private String allToAllUneven() {
        NcclBuffer[] sends = new NcclBuffer[world];
        NcclBuffer[] recvs = new NcclBuffer[world];
        for (int j = 0; j < world; j++) {
            float[] x = new float[rank + j + 1];
            java.util.Arrays.fill(x, rank * 10 + j);
            sends[j] = upload(x);
            recvs[j] = alloc(j + rank + 1, DeviceDataType.FP32); // rank j sends j + rank + 1 elements here
        }
        group.allToAll(sends, recvs);
        for (int i = 0; i < world; i++) {
            float[] got = downloadFloats(recvs[i]);
            for (float f : got) {
                if (f != i * 10 + rank) {
                    return "chunk from rank " + i + " holds " + f + ", expected " + (i * 10 + rank);
                }
            }
        }
        return null;
    }

    private String metadata() {
        long[] got = group.allGatherLongs(rank, 42, -rank);
        for (int r = 0; r < world; r++) {
            if (got[3 * r] != r || got[3 * r + 1] != 42 || got[3 * r + 2] != -r) {
                return "allGatherLongs gave " + java.util.Arrays.toString(got);
            }
        }
        group.barrier();
        return null;
    }

    private NcclBuffer alloc(long count, DeviceDataType type) {
        DevicePointer p = new DevicePointer();
        JCudaDriver.cuMemAlloc(p, Math.max(1, count) * type.byteSize());
        allocations.put(p.address(), p);
        return new NcclBuffer(p.address(), count, type);
    }

    private NcclBuffer upload(float[] x) {
        NcclBuffer b = alloc(x.length, DeviceDataType.FP32);
        JCudaDriver.cuMemcpyHtoD(ptr(b), Pointer.to(x), 4L * x.length);
        return b;
    }

    private NcclBuffer upload(double[] x) {
        NcclBuffer b = alloc(x.length, DeviceDataType.FP64);
        JCudaDriver.cuMemcpyHtoD(ptr(b), Pointer.to(x), 8L * x.length);
        return b;
    }

    private NcclBuffer upload(long[] x) {
        NcclBuffer b = alloc(x.length, DeviceDataType.INT64);
        JCudaDriver.cuMemcpyHtoD(ptr(b), Pointer.to(x), 8L * x.length);
        return b;
    }

    private float[] downloadFloats(NcclBuffer b) {
        float[] x = new float[(int) b.count()];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(x), ptr(b), 4L * x.length);
        return x;
    }

    // The JCuda pointer of an allocation (JCuda copies take whole allocations here; NCCL takes any slice).
    private CUdeviceptr ptr(NcclBuffer b) {
        CUdeviceptr p = allocations.get(b.pointer());
        if (p == null) {
            throw new IllegalArgumentException("not the start of an allocation: 0x" + Long.toHexString(b.pointer()));
        }
        return p;
    }

    private void free() {
        for (CUdeviceptr p : allocations.values()) {
            JCudaDriver.cuMemFree(p);
        }
        allocations.clear();
    }

    /** A JCuda device pointer that reveals its raw address (the seam to {@link NcclBuffer}). */
    static final class DevicePointer extends CUdeviceptr {
        long address() {
            return getNativePointer();
        }
    }
}
