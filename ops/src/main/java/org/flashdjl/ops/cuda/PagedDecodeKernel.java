package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Objects;

/**
 * Paged decode over raw device memory: one query token per sequence against K/V page pools
 * ({@code ops/src/main/cuda/paged_decode.cu}), GQA-grouped (each KV page is read once for the Hq / Hkv query
 * heads that share it), with split-KV (flash-decoding) when the batch alone cannot fill the GPU: the CTA that
 * finishes a (sequence, KV head) row last merges its splits (merge_state.cu's rule) in the same launch.
 *
 * <pre>{@code
 * try (PagedDecodeKernel.DecodeStep ws = PagedDecodeKernel.DecodeStep.create(table, hq, hkv, d, device)) { // per step
 *     PagedDecodeKernel.builder()
 *             .setQuery(q)                   // [B, Hq, D] fp16/bf16
 *             .setKeyPages(k).setValuePages(v) // [numPages, pageSize, Hkv, D]
 *             .setOutput(o)                  // [B, Hq, D]
 *             .optLse(lse)                   // [B, Hq] fp32
 *             .setSpec(spec).setWorkspace(ws)
 *             .build()                       // every check, no CUDA call
 *             .run();                        // 1 launch on stream 0 (split-KV merged inside it)
 * }
 * }</pre>
 *
 * <p>The semantics are {@link org.flashdjl.ops.paged.PagedPlan}'s for one query per sequence: the query is the
 * sequence's last token ({@code pos = keyOffset + len - 1}); window, sinks, ALiBi and softcap follow the library's
 * one mask/score rule ({@code flash_common.cuh}); causal and right windows are no-ops for decode. Supported: fp16
 * and bf16, head dims {@link #HEAD_DIMS}, {@code Hq / Hkv <= } {@link #MAX_GROUP}, every page size 1..256. Memory:
 * 16-byte aligned tensors, head-dim stride 1, other strides multiples of 8 elements, K and V pools with the same
 * strides and pages dense in the pool (page stride = pageSize * token stride).
 */
public final class PagedDecodeKernel {

    /** The decode fatbin resource. */
    public static final String MODULE = "org/flashdjl/ops/cuda/paged_decode.fatbin";

    /** The head dims with kernels. */
    public static final int[] HEAD_DIMS = {64, 128, 256};

    /**
     * The head dim that also has {@code _wide} kernels (8 warps a CTA instead of 4, one CTA an SM):
     * {@link Builder#build()} takes them when the grid ({@code numSplits * Hkv * B} CTAs) has at most one CTA per SM,
     * where they stream 1.4-2.6 points of the copy rate faster; with more CTAs the 4-warp kernels, two an SM, are
     * ahead (docs/PERF.md, runs 92-94). On compute capability 9.x a one-wave grid of 2 splits takes their
     * {@code _wide_pair} form (clusters of 2 CTAs that merge a row's two states through distributed shared memory,
     * not global memory: +1.7-1.9 points at 8 x 16k, runs 100 and 107).
     */
    public static final int WIDE_HEAD_DIM = 128;

    /**
     * Dynamic shared memory of every kernel form in bytes, keyed {@code hd<D><suffix>} (paged_decode.cu pins the same
     * numbers in static_asserts, which PagedDecodeKernelTest reads). {@link Builder#build()} takes the fastest form
     * that fits the device's (or the caller's) limit: the {@code _compact} hd 128 / 256 kernels (2 ring stages a
     * warp) are for GPUs whose CTAs may take at most 99 KB (compute capability 8.6, 8.9, 12.x).
     */
    static final Map<String, Integer> SHARED_MEMORY = Map.of("hd64", 76032, "hd128", 108800, "hd128_wide", 143616,
            "hd128_wide_pair", 151872, "hd128_compact", 73984, "hd256", 143616, "hd256_compact", 76032);

    /** The largest GQA group (query heads per kv head) one CTA's 16-row mma slab holds. */
    public static final int MAX_GROUP = 16;

    /** Tokens per tile; chunk sizes are multiples of it. */
    public static final int TILE = 16;

    /** The smallest split chunk (tokens): below it a split costs more than it gains. */
    public static final int MIN_CHUNK = 256;

    /** {@code struct PagedDecodeParams} of {@code paged_params.h}. */
    public static final KernelStruct.Layout LAYOUT = KernelStruct.Layout.of("PagedDecodeParams",
            "q", KernelStruct.Kind.POINTER, "k_pages", KernelStruct.Kind.POINTER,
            "v_pages", KernelStruct.Kind.POINTER, "o", KernelStruct.Kind.POINTER,
            "lse", KernelStruct.Kind.POINTER, "partial_o", KernelStruct.Kind.POINTER,
            "partial_lse", KernelStruct.Kind.POINTER, "page_indptr", KernelStruct.Kind.POINTER,
            "page_indices", KernelStruct.Kind.POINTER, "seq_lens", KernelStruct.Kind.POINTER,
            "alibi_slopes", KernelStruct.Kind.POINTER, "split_counters", KernelStruct.Kind.POINTER,
            "q_batch_stride", KernelStruct.Kind.INT64, "q_head_stride", KernelStruct.Kind.INT64,
            "o_batch_stride", KernelStruct.Kind.INT64, "o_head_stride", KernelStruct.Kind.INT64,
            "lse_batch_stride", KernelStruct.Kind.INT64, "kv_row_stride", KernelStruct.Kind.INT64,
            "kv_head_stride", KernelStruct.Kind.INT64,
            "batch", KernelStruct.Kind.INT32, "hq", KernelStruct.Kind.INT32, "hkv", KernelStruct.Kind.INT32,
            "head_dim", KernelStruct.Kind.INT32, "page_size", KernelStruct.Kind.INT32,
            "num_splits", KernelStruct.Kind.INT32,
            "mask", KernelStruct.MASK_PARAMS);

    private static final Logger logger = LoggerFactory.getLogger(PagedDecodeKernel.class);

    private final DecodeStep workspace;
    private final KernelStruct params;
    private final String kernelName;
    private final int hkv;
    private final int batch;
    private final float[] alibi;
    private boolean synchronize;

    private PagedDecodeKernel(DecodeStep workspace, KernelStruct params, String kernelName, int hkv, int batch,
            float[] alibi, boolean synchronize) {
        this.workspace = workspace;
        this.params = params;
        this.kernelName = kernelName;
        this.hkv = hkv;
        this.batch = batch;
        this.alibi = alibi;
        this.synchronize = synchronize;
    }

    /**
     * Starts a call.
     *
     * @return a builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns why a (dtype, head dim, head counts) combination has no kernel, or null.
     *
     * @param type the dtype of q and the pools
     * @param headDim D
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @return the reason naming the supported values, or null
     */
    public static String unsupportedReason(DeviceDataType type, int headDim, int queryHeads, int kvHeads) {
        String why = PagedOperands.unsupportedReason("the paged decode kernels", HEAD_DIMS, type, headDim, queryHeads,
                kvHeads);
        if (why != null) {
            return why;
        }
        if (queryHeads / kvHeads > MAX_GROUP) {
            return "GQA group Hq / Hkv = " + queryHeads / kvHeads + " exceeds the paged decode kernels' limit of "
                    + MAX_GROUP + " query heads per kv head (one 16-row mma slab); supported groups: 1.." + MAX_GROUP;
        }
        if (kvHeads > FlashAttention.MAX_GRID_YZ) {
            return "kv heads " + kvHeads + " exceed the CUDA grid y limit " + FlashAttention.MAX_GRID_YZ;
        }
        return null;
    }

    /**
     * The split-KV plan of one step: {@code numSplits} CTAs per (sequence, kv head) row share the row's 16-token tiles
     * (dealt to their warps in units of 8 tiles, 4 in the {@code _wide} kernels, round-robin); {@code chunkSize} is
     * the planner's measure of one split's share of the longest sequence ({@code numSplits * chunkSize} covers it).
     *
     * @param numSplits CTAs per row (grid x); 1 = no split, no merge
     * @param chunkSize tokens of the longest sequence per split, a multiple of {@link #TILE}
     */
    public record Schedule(int numSplits, int chunkSize) {

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return numSplits == 1 ? "no split" : numSplits + " splits of " + chunkSize + " tokens";
        }
    }

    /**
     * Plans split-KV with a wave model of the GPU: for each candidate split count s (chunk = the longest sequence / s,
     * a multiple of {@link #TILE}, never below {@link #MIN_CHUNK} tokens) the chunks of work, {@code kvHeads *
     * sum_b ceil(len_b / chunk)}, run in {@code ceil(chunks / smCount)} waves of one chunk each, plus a fixed cost per
     * CTA and one for the merge; the cheapest s wins, ties to fewer splits. The kernel streams at the memory
     * system's rate, so an SM is one slot however many CTAs it holds (a second resident CTA shares its bandwidth;
     * measured in session 7: 1 x 64k over 8 kv heads on 132 SMs streams 2 % faster as 16 splits = 128 CTAs than as
     * 33 splits = 264, and 12 or 24 splits, which load the SMs unevenly, 10 % slower). A batch that fills the GPU
     * by itself is not split.
     *
     * @param seqLens tokens per sequence [B]
     * @param kvHeads Hkv
     * @param smCount streaming multiprocessors of the device
     * @return the schedule
     */
    public static Schedule schedule(int[] seqLens, int kvHeads, int smCount) {
        int max = 0;
        for (int len : seqLens) {
            max = Math.max(max, len);
        }
        long slots = Math.max(1L, smCount);
        int whole = (int) Math.max(TILE, roundUp(max, TILE));
        Schedule best = new Schedule(1, whole);
        double bestCost = waveCost(seqLens, kvHeads, slots, whole, false);
        // more than two waves' worth of splits per kv head never pays
        long maxSplits = Math.min((max + MIN_CHUNK - 1) / MIN_CHUNK, 2 * slots / Math.max(1, kvHeads) + 1);
        for (int s = 2; s <= maxSplits; s++) {
            int chunk = (int) Math.max(MIN_CHUNK, roundUp((max + s - 1) / s, TILE));
            int splits = (max + chunk - 1) / chunk;
            if (splits != s) {
                continue; // the same plan as a smaller s
            }
            double cost = waveCost(seqLens, kvHeads, slots, chunk, true);
            if (cost < bestCost) {
                bestCost = cost;
                best = new Schedule(s, chunk);
            }
        }
        return best;
    }

    /**
     * Fixed cost of one CTA (Q load, pipeline fill and drain, its partial state), in tokens of K/V streaming; fit to
     * the session-7 split sweep (docs/PERF.md).
     */
    private static final int CTA_COST = 128;
    /** Cost of merging split-KV (the last CTA of a row reads every split), in tokens of K/V streaming. */
    private static final int MERGE_COST = 128;

    // The wave model of schedule(): waves x (chunk + per-CTA cost) (+ the merge).
    private static double waveCost(int[] seqLens, int kvHeads, long slots, int chunk, boolean merge) {
        long ctas = 0;
        for (int len : seqLens) {
            ctas += Math.max(1, (len + chunk - 1) / chunk);
        }
        ctas *= Math.max(1, kvHeads);
        long waves = (ctas + slots - 1) / slots;
        return waves * (double) (chunk + CTA_COST) + (merge ? MERGE_COST : 0);
    }

    private static long roundUp(long x, int m) {
        return (x + m - 1) / m * m;
    }

    /**
     * Returns the decode kernel this call launches.
     *
     * @return e.g. {@code "paged_decode_fp16_hd128_plain"}
     */
    public String kernelName() {
        return kernelName;
    }

    /**
     * Returns the decode parameter block (the ALiBi slopes' device address is filled by {@link #run()}).
     *
     * @return the struct
     */
    public KernelStruct getParams() {
        return params;
    }

    /**
     * Waits for the kernels in {@link #run()} and surfaces asynchronous errors there (tests).
     *
     * @param synchronize true to call {@code cuCtxSynchronize} after the launches
     * @return this
     */
    public PagedDecodeKernel optSynchronize(boolean synchronize) {
        this.synchronize = synchronize;
        return this;
    }

    /**
     * Launches the decode kernel (split-KV merged inside it) on the legacy default stream.
     *
     * @throws IllegalStateException if CUDA is unavailable, the kernels are not built or the workspace is closed
     * @throws CudaException naming the driver call and kernel on a CUDA error
     */
    public void run() {
        workspace.checkOpen();
        if (workspace.tableBuffer == null) {
            throw new IllegalStateException("the workspace has no device memory (a validation-only workspace)");
        }
        int device = workspace.device;
        KernelModule.Kernel kernel = KernelModule.get(MODULE, device).getKernel(kernelName);
        if (batch == 0) {
            return;
        }
        if (alibi != null) {
            params.set("alibi_slopes", workspace.arguments().fp32("paged.alibi_slopes", alibi).getAddress());
        }
        if (logger.isTraceEnabled()) {
            logger.trace("launch {} grid ({}, {}, {}) {}", kernel, workspace.schedule.numSplits(), hkv, batch, params);
        }
        kernel.launch(workspace.schedule.numSplits(), hkv, batch, params.toBytes());
        if (synchronize) {
            CudaRuntime.synchronize(kernelName);
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "PagedDecodeKernel{" + kernelName + ", " + workspace + "}";
    }

    /**
     * One step's device data for a page table: the table uploaded once (CSR indptr, indices and the sequence
     * lengths, int32; with split-KV also the zeroed split counters [B * Hkv]) and, with split-KV, the fp32 partial
     * outputs [B, numSplits, Hq, D] and LSEs [B, numSplits, Hq]. Every layer's {@link PagedDecodeKernel} of the
     * step reuses it. The split counters and partials are the step's scratch: launches that share a step must run
     * one after another on one stream (as a model's layers do), never concurrently. Closing waits for the device (no
     * kernel may still read it) and frees the memory.
     */
    public static final class DecodeStep extends PagedStepBuffers {
        private final int queryHeads;
        private final int kvHeads;
        private final int headDim;
        private final Schedule schedule;
        // the device: its SM count decides _wide (a grid of one wave), its compute capability _wide_pair (9.x clusters)
        private final CudaRuntime.DeviceInfo deviceInfo;
        // tableBuffer (PagedStepBuffers): int32 [B + 1 | nnz | B | B * Hkv split counters, 0 (with split)], 256-B sections
        private final DeviceBuffer partialO; // fp32 [B, numSplits, Hq, D], null without split
        private final DeviceBuffer partialLse; // fp32 [B, numSplits, Hq], null without split

        /**
         * Assembles a step over uploaded buffers ({@link #create}); null buffers make a step without device memory
         * that builds launches but refuses to run them (the launcher's validation tests build such steps).
         */
        DecodeStep(PageTable table, int queryHeads, int kvHeads, int headDim, int device, Schedule schedule,
                CudaRuntime.DeviceInfo deviceInfo, DeviceBuffer tableBuffer, DeviceBuffer partialO,
                DeviceBuffer partialLse) {
            super("paged decode", table, device, tableBuffer);
            this.queryHeads = queryHeads;
            this.kvHeads = kvHeads;
            this.headDim = headDim;
            this.schedule = schedule;
            this.deviceInfo = deviceInfo;
            this.partialO = partialO;
            this.partialLse = partialLse;
        }

        /**
         * Uploads a page table and plans split-KV for the device's SM count.
         *
         * @param table the step's page table
         * @param queryHeads Hq
         * @param kvHeads Hkv
         * @param headDim D
         * @param device the CUDA device ordinal
         * @return the workspace
         * @throws IllegalArgumentException naming the unsupported value
         */
        public static DecodeStep create(PageTable table, int queryHeads, int kvHeads, int headDim, int device) {
            Objects.requireNonNull(table, "table");
            CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(device);
            Schedule s = schedule(table.getSeqLens(), kvHeads, info.smCount());
            return create(table, queryHeads, kvHeads, headDim, device, s);
        }

        /**
         * Uploads a page table with a given split schedule (tests, benchmarks).
         *
         * @param table the step's page table
         * @param queryHeads Hq
         * @param kvHeads Hkv
         * @param headDim D
         * @param device the CUDA device ordinal
         * @param schedule the split plan: {@code chunkSize} a positive multiple of {@link #TILE} and
         *     {@code numSplits * chunkSize >=} the longest sequence
         * @return the workspace
         */
        public static DecodeStep create(PageTable table, int queryHeads, int kvHeads, int headDim, int device,
                Schedule schedule) {
            Objects.requireNonNull(table, "table");
            Objects.requireNonNull(schedule, "schedule");
            String why = PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, headDim, queryHeads, kvHeads);
            if (why != null) {
                throw new IllegalArgumentException(why);
            }
            int max = 0;
            for (int len : table.getSeqLens()) {
                max = Math.max(max, len);
            }
            if (schedule.chunkSize() < TILE || schedule.chunkSize() % TILE != 0 || schedule.numSplits() < 1
                    || (long) schedule.numSplits() * schedule.chunkSize() < max) {
                throw new IllegalArgumentException("schedule " + schedule.numSplits() + " x " + schedule.chunkSize()
                        + " must have a chunk size that is a positive multiple of " + TILE + " and cover the longest"
                        + " sequence (" + max + " tokens)");
            }
            if (schedule.numSplits() > Integer.MAX_VALUE / 2) {
                throw new IllegalArgumentException("numSplits " + schedule.numSplits() + " is too large");
            }
            int b = table.getBatchSize();
            if (b > FlashAttention.MAX_GRID_YZ) {
                throw new IllegalArgumentException("batch " + b + " exceeds the CUDA grid z limit "
                        + FlashAttention.MAX_GRID_YZ);
            }
            CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(device);
            // the split counters ride in the same upload, zero (the kernel leaves them zero after each launch)
            int counters = schedule.numSplits() > 1 ? Math.multiplyExact(b, kvHeads) : 0;
            DeviceBuffer tb = upload(table, new int[counters], device);
            DeviceBuffer po = null;
            DeviceBuffer pl = null;
            try {
                if (schedule.numSplits() > 1) {
                    long rows = (long) b * schedule.numSplits() * queryHeads;
                    po = DeviceBuffer.allocate(device, 4L * rows * headDim);
                    pl = DeviceBuffer.allocate(device, 4L * rows);
                }
            } catch (RuntimeException e) {
                tb.close();
                if (po != null) {
                    po.close();
                }
                throw e;
            }
            DecodeStep ws = new DecodeStep(table, queryHeads, kvHeads, headDim, device, schedule, info, tb, po, pl);
            logger.debug("paged decode workspace: B={} Hq={} Hkv={} D={} page={} on cuda:{}: {}", b, queryHeads,
                    kvHeads, headDim, table.getPageSize(), device, schedule);
            return ws;
        }

        /**
         * Returns the split plan.
         *
         * @return the schedule
         */
        public Schedule getSchedule() {
            return schedule;
        }

        /**
         * Returns the device ordinal.
         *
         * @return the ordinal
         */
        public int getDevice() {
            return device;
        }

        long splitCountersAddress() {
            return extraAddress();
        }

        @Override
        void closeMore() {
            if (partialO != null) {
                partialO.close();
                partialLse.close();
            }
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "DecodeStep{B=" + table.getBatchSize() + " Hq=" + queryHeads + " Hkv=" + kvHeads + " D=" + headDim
                    + " page=" + table.getPageSize() + " cuda:" + device + ", " + schedule + "}";
        }
    }

    /** Collects and validates one call; {@code setX} are required. */
    public static final class Builder extends PagedCallBuilder<Builder> {
        private DecodeStep workspace;
        private int sharedMemoryLimit; // 0: the device's opt-in limit

        private Builder() {}

        /**
         * Sets the step's workspace (page table upload and split plan).
         *
         * @param workspace from {@link DecodeStep#create}
         * @return this builder
         */
        public Builder setWorkspace(DecodeStep workspace) {
            this.workspace = workspace;
            return this;
        }

        /**
         * Caps the dynamic shared memory one CTA of the call may take (default: the device's opt-in limit,
         * {@link CudaRuntime.DeviceInfo#sharedMemoryPerBlockOptin()}). A lower cap takes a smaller kernel form: the
         * {@code _compact} kernels need 73,984 / 76,032 bytes at head dim 128 / 256, the hd 64 kernel 76,032; use it
         * to leave shared memory to kernels that run beside the decode, or to run the form a smaller GPU takes.
         *
         * @param bytes the cap, positive
         * @return this builder
         * @throws IllegalArgumentException if {@code bytes <= 0}
         */
        public Builder optSharedMemoryLimit(int bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("shared memory limit " + bytes + " must be positive (bytes)");
            }
            this.sharedMemoryLimit = bytes;
            return this;
        }

        /**
         * Validates everything that can be checked without the GPU and builds the call.
         *
         * @return the call
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         * @throws UnsupportedOperationException for a dtype, head dim or group without kernels, or when no kernel form
         *     fits the shared memory a CTA may take (the device's, or {@link #optSharedMemoryLimit})
         */
        public PagedDecodeKernel build() {
            requireOperands(workspace);
            workspace.checkOpen();
            PagedOperands.check("the paged decode kernels", "[batch, Hq, D] (one token per sequence)", q, k, v, o,
                    lse, workspace.device, workspace.table, keyOffset, spec);
            int device = q.getDevice();
            DeviceDataType type = q.getDataType();
            PageTable table = workspace.table;
            long b = q.size(0);
            long hq = q.size(1);
            long d = q.size(2);
            long hkv = k.size(2);
            if (b != table.getBatchSize()) {
                throw new IllegalArgumentException("query has " + b + " rows but the page table has "
                        + table.getBatchSize() + " sequences (decode: one query row per sequence)");
            }
            if (hq != workspace.queryHeads || hkv != workspace.kvHeads || d != workspace.headDim) {
                throw new IllegalArgumentException("query " + DeviceTensor.format(q.getShape()) + " / keyPages "
                        + DeviceTensor.format(k.getShape()) + " do not match the workspace's Hq=" + workspace.queryHeads
                        + " Hkv=" + workspace.kvHeads + " D=" + workspace.headDim);
            }
            String why = unsupportedReason(type, (int) d, (int) hq, (int) hkv);
            if (why != null) {
                throw new UnsupportedOperationException(why);
            }
            boolean general = spec.hasAlibi() || spec.getSoftcap() > 0 || spec.getWindowLeft() >= 0;
            Schedule s = workspace.schedule;
            // grid (numSplits, Hkv, B): one wave of one CTA an SM takes the 8-warp kernel (WIDE_HEAD_DIM), with 2
            // splits on sm_90 its cluster-of-2 form
            CudaRuntime.DeviceInfo info = workspace.deviceInfo;
            boolean wide = d == WIDE_HEAD_DIM && (long) s.numSplits() * hkv * b <= info.smCount();
            boolean pair = wide && s.numSplits() == 2 && info.major() == 9;
            String form = formThatFits((int) d, pair ? "_wide_pair" : wide ? "_wide" : "", info);
            String name = "paged_decode_" + type.shortName() + "_hd" + d + (general ? "_general" : "_plain") + form;
            KernelStruct p = LAYOUT.newStruct();
            p.set("q", q.getAddress()).set("k_pages", k.getAddress()).set("v_pages", v.getAddress())
                    .set("o", o.getAddress()).set("lse", lse == null ? 0 : lse.getAddress())
                    .set("page_indptr", workspace.indptrAddress()).set("page_indices", workspace.indicesAddress())
                    .set("seq_lens", workspace.seqLensAddress());
            p.set("q_batch_stride", q.stride(0)).set("q_head_stride", q.stride(1))
                    .set("o_batch_stride", o.stride(0)).set("o_head_stride", o.stride(1))
                    .set("lse_batch_stride", lse == null ? 0 : lse.stride(0))
                    .set("kv_row_stride", k.stride(1)).set("kv_head_stride", k.stride(2));
            p.set("batch", b).set("hq", hq).set("hkv", hkv).set("head_dim", d).set("page_size", table.getPageSize())
                    .set("num_splits", s.numSplits())
                    .setMask(spec, (int) d).set("mask.key_offset", keyOffset);
            if (s.numSplits() > 1) {
                // a step without device memory (validation only) gets placeholder addresses; run() refuses it
                long poAddress = workspace.partialO == null ? 1L << 40 : workspace.partialO.getAddress();
                long plAddress = workspace.partialLse == null ? 1L << 41 : workspace.partialLse.getAddress();
                p.set("partial_o", poAddress).set("partial_lse", plAddress)
                        .set("split_counters", workspace.splitCountersAddress());
            }
            return new PagedDecodeKernel(workspace, p, name, (int) hkv, (int) b,
                    spec.hasAlibi() ? spec.getAlibiSlopes() : null, synchronize);
        }

        // The preferred form if its shared memory fits the limit, else (for _wide_pair) _wide, else the 4-warp kernel,
        // else the _compact one.
        private String formThatFits(int d, String preferred, CudaRuntime.DeviceInfo info) {
            int limit = info.sharedMemoryPerBlockOptin();
            if (sharedMemoryLimit > 0) {
                limit = Math.min(limit, sharedMemoryLimit);
            }
            String[] order = preferred.equals("_wide_pair") ? new String[] {preferred, "_wide", "", "_compact"}
                    : new String[] {preferred, "", "_compact"};
            for (String form : order) {
                Integer need = SHARED_MEMORY.get("hd" + d + form);
                if (need != null && need <= limit) {
                    return form;
                }
            }
            int least = Integer.MAX_VALUE;
            for (String form : new String[] {"", "_compact"}) {
                least = Math.min(least, SHARED_MEMORY.getOrDefault("hd" + d + form, Integer.MAX_VALUE));
            }
            throw new UnsupportedOperationException("the paged decode kernels for head dim " + d + " need at least "
                    + least + " bytes of shared memory a CTA, but "
                    + (limit < info.sharedMemoryPerBlockOptin() ? "optSharedMemoryLimit allows " + limit
                            : info + " allows " + limit));
        }
    }
}
