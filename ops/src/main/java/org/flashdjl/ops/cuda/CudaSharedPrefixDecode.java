package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.paged.PageTable;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Shared-prefix (cascade) batch decode on raw device memory: the GPU counterpart of
 * {@link org.flashdjl.ops.cascade.SharedPrefixBatchDecode} (FlashInfer's
 * {@code BatchDecodeWithSharedPrefixPagedKvCacheWrapper}). Each of B requests has one query token; its keys are
 * one contiguous prefix shared by all requests ({@code kShared} [P, Hkv, D]) followed by its own paged suffix. The
 * result equals paged decode over prefix + suffix (query of request b at global position {@code P + S_b - 1}).
 *
 * <p>How: the prefix is read once for the whole batch, not B times. The B queries are the query rows of one dense
 * {@link FlashAttention} call (q viewed {@code [split, B, Hq, D]} bshd with batch stride 0, plain non-causal: every
 * decode query sits after the whole prefix; GQA-packed where the device has packed kernels,
 * {@link FlashAttention.Builder#optPackGqa}: the B x Hq/Hkv queries of a key/value head are one CTA's rows and the
 * prefix is read once per key/value head, not once per query head); the prefix is cut into chunks along that batch axis (K/V viewed
 * {@code [split, chunk, Hkv, D]}, batch stride = chunk rows) so that the grid fills the GPU (the flash kernel has
 * no split-KV of its own); a prefix whose length is no multiple of the chunk gets a second call for the shorter
 * last chunk. The partial states (outputs in the input dtype {@code [B, states, Hq, D]}, fp32 LSEs
 * {@code [B, states, Hq]}: the flash calls write both through strides) are merged by one
 * {@link MergeStateKernel#mergeStates} launch; the suffix goes
 * through {@link PagedDecodeKernel} with {@code keyOffset = P} straight into the output, and one
 * {@link MergeStateKernel#mergeState} folds the prefix state into it. Launches per layer: 1-2 flash, 1 merge, 1
 * decode (its split-KV merged inside it), 1 merge, all on the legacy default stream.
 *
 * <pre>{@code
 * try (CudaSharedPrefixDecode plan = CudaSharedPrefixDecode.begin(suffixTable, P, hq, hkv, d, device)) { // per step
 *     for (int layer = 0; layer < layers; layer++) {
 *         plan.forward(q[layer],                    // [B, Hq, D] fp16/bf16
 *                 kShared[layer], vShared[layer],     // [P, Hkv, D]
 *                 kPages[layer], vPages[layer],       // [numPages, pageSize, Hkv, D]
 *                 spec, out[layer], lse[layer]);      // out [B, Hq, D], lse fp32 [B, Hq] or null
 *     }
 * }   // close() = end of step: waits for the device and frees the plan's buffers
 * }</pre>
 *
 * <p>{@link #begin} allocates every buffer of the step (split partials, merged prefix state, suffix LSE, the
 * decode {@link PagedDecodeKernel.DecodeStep} with the uploaded page table); {@link #forward}/{@link #prepare}
 * allocate no device memory. Options: causal (a no-op for decode), scale and softcap; windows, attention sinks and
 * ALiBi across the prefix need per-request query positions that the flash call lacks and are refused with
 * {@link UnsupportedOperationException} (the NDArray cascade covers them). P = 0 is allowed (the call is a plain
 * paged decode); empty suffixes are allowed (LSE of the suffix {@code -inf}, weight 0 in the merge). Memory rules
 * are the flash and decode kernels': 16-byte aligned tensors, head-dim stride 1, other strides multiples of 8
 * elements. Not thread-safe: one plan per scheduler thread.
 */
public final class CudaSharedPrefixDecode implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(CudaSharedPrefixDecode.class);

    private final PageTable table;
    private final int prefixLen;
    private final int queryHeads;
    private final int kvHeads;
    private final int headDim;
    private final int device;
    private final SharedPrefixSplit split;
    private final PagedDecodeKernel.DecodeStep workspace;
    private final StepMemory memory;
    private volatile boolean closed;

    /**
     * The device memory of a step's plan: the five regions its layers write (addresses), and the buffers the plan
     * owns and frees at {@link #close()}.
     *
     * @param partialO 2-byte [B, states, Hq, D]: the prefix split states
     * @param partialLse fp32 [B, states, Hq]
     * @param prefixO 2-byte [B, Hq, D]: the merged prefix state
     * @param prefixLse fp32 [B, Hq]
     * @param suffixLse fp32 [B, Hq]
     * @param owned the buffers behind the addresses that the plan frees (may be empty)
     */
    record StepMemory(long partialO, long partialLse, long prefixO, long prefixLse, long suffixLse,
            List<DeviceBuffer> owned) {}

    /**
     * Assembles a plan over a suffix decode workspace and step memory (what {@link #begin} allocates).
     *
     * @param table the B suffixes' pages
     * @param prefixLen P
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA ordinal
     * @param split the prefix split, {@code split.prefixLen() == P}
     * @param workspace the suffix decode's workspace, closed with the plan
     * @param memory the step's buffers, freed with the plan
     */
    CudaSharedPrefixDecode(PageTable table, int prefixLen, int queryHeads, int kvHeads, int headDim, int device,
            SharedPrefixSplit split, PagedDecodeKernel.DecodeStep workspace, StepMemory memory) {
        checkPlanArgs(table, prefixLen, queryHeads, kvHeads, headDim, split);
        this.table = table;
        this.prefixLen = prefixLen;
        this.queryHeads = queryHeads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.device = device;
        this.split = split;
        this.workspace = Objects.requireNonNull(workspace, "workspace");
        this.memory = Objects.requireNonNull(memory, "memory");
    }

    /**
     * Returns why this path cannot compute a spec, or null: windows, attention sinks and ALiBi need each
     * request's query position inside the prefix call, which the shared flash call does not have.
     *
     * @param spec the options
     * @return the reason naming the supported options, or null
     */
    public static String unsupportedReason(AttentionSpec spec) {
        Objects.requireNonNull(spec, "spec");
        String what = null;
        if (spec.getWindowLeft() >= 0 || spec.getWindowRight() >= 0) {
            what = "a sliding window (" + spec.getWindowLeft() + ", " + spec.getWindowRight() + ")";
        } else if (spec.getSinkTokens() > 0) {
            what = "attention sinks (" + spec.getSinkTokens() + ")";
        } else if (spec.hasAlibi()) {
            what = "ALiBi";
        }
        return what == null ? null : "the GPU shared-prefix decode does not support " + what + ": it needs each"
                + " request's query position across the shared prefix; supported here: plain or causal decode with"
                + " an optional scale and softcap (the NDArray cascade SharedPrefixBatchDecode supports every"
                + " option)";
    }

    /**
     * Starts a step: plans the prefix split for the device's SM count, uploads the suffix page table and
     * allocates every buffer the step's layers use.
     *
     * @param suffixTable the B suffixes' pages (its lengths are the suffix lengths {@code S_b}, 0 allowed)
     * @param prefixLen P, the shared prefix length ({@code >= 0})
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA device ordinal
     * @return the plan; close it at the end of the step
     * @throws IllegalArgumentException naming the unsupported value
     */
    public static CudaSharedPrefixDecode begin(PageTable suffixTable, int prefixLen, int queryHeads, int kvHeads,
            int headDim, int device) {
        Objects.requireNonNull(suffixTable, "suffixTable");
        CudaRuntime.DeviceInfo info = CudaRuntime.getDeviceInfo(device);
        int b = suffixTable.getBatchSize();
        // GQA-packed prefix calls: a key/value head's CTA holds B x G rows; else a query head's CTA holds B rows
        boolean packed = queryHeads > kvHeads && kvHeads > 0
                && FlashDispatch.hasPacked(info.computeCapability(), DeviceDataType.FP16, headDim);
        int group = packed ? queryHeads / kvHeads : 1;
        SharedPrefixSplit s = SharedPrefixSplit.plan(prefixLen, b * group, queryHeads / group, info.smCount(),
                SharedPrefixSplit.PLAN_ROWS_PER_BLOCK);
        return begin(suffixTable, prefixLen, queryHeads, kvHeads, headDim, device, s, null);
    }

    /**
     * Starts a step with a given prefix split and suffix decode schedule (tests, benchmarks).
     *
     * @param suffixTable the B suffixes' pages
     * @param prefixLen P
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA device ordinal
     * @param split the prefix split, {@code split.prefixLen() == P}
     * @param suffixSchedule the suffix decode's split-KV schedule, or null for the automatic one
     * @return the plan
     */
    public static CudaSharedPrefixDecode begin(PageTable suffixTable, int prefixLen, int queryHeads, int kvHeads,
            int headDim, int device, SharedPrefixSplit split, PagedDecodeKernel.Schedule suffixSchedule) {
        checkPlanArgs(suffixTable, prefixLen, queryHeads, kvHeads, headDim, split);
        int b = suffixTable.getBatchSize();
        PagedDecodeKernel.DecodeStep ws = suffixSchedule == null
                ? PagedDecodeKernel.DecodeStep.create(suffixTable, queryHeads, kvHeads, headDim, device)
                : PagedDecodeKernel.DecodeStep.create(suffixTable, queryHeads, kvHeads, headDim, device,
                        suffixSchedule);
        List<DeviceBuffer> bufs = new ArrayList<>();
        long[] addr = new long[5];
        try {
            if (prefixLen > 0 && b > 0) {
                long rows = (long) b * queryHeads;
                long[] bytes = {2L * rows * split.states() * headDim, 4L * rows * split.states(),
                    2L * rows * headDim, 4L * rows, 4L * rows};
                for (int i = 0; i < bytes.length; i++) {
                    bufs.add(DeviceBuffer.allocate(device, bytes[i]));
                    addr[i] = bufs.get(i).getAddress();
                }
            }
        } catch (RuntimeException e) {
            for (DeviceBuffer x : bufs) {
                x.close();
            }
            ws.close();
            throw e;
        }
        CudaSharedPrefixDecode plan = new CudaSharedPrefixDecode(suffixTable, prefixLen, queryHeads, kvHeads,
                headDim, device, split, ws, new StepMemory(addr[0], addr[1], addr[2], addr[3], addr[4], bufs));
        logger.debug("shared-prefix decode plan: {}", plan);
        return plan;
    }

    private static void checkPlanArgs(PageTable table, int prefixLen, int queryHeads, int kvHeads, int headDim,
            SharedPrefixSplit split) {
        Objects.requireNonNull(table, "suffixTable");
        Objects.requireNonNull(split, "split");
        if (prefixLen < 0) {
            throw new IllegalArgumentException("prefix length must be >= 0, got " + prefixLen);
        }
        if (split.prefixLen() != prefixLen) {
            throw new IllegalArgumentException("the split plan covers " + split.prefixLen() + " prefix keys but the"
                    + " prefix has " + prefixLen);
        }
        String why = PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, headDim, queryHeads, kvHeads);
        if (why == null) {
            why = FlashDispatch.unsupportedReason(DeviceDataType.FP16, headDim);
        }
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        int maxSuffix = Arrays.stream(table.getSeqLens()).max().orElse(0);
        if ((long) prefixLen + maxSuffix > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("prefix " + prefixLen + " + longest suffix " + maxSuffix
                    + " exceeds the kernels' int32 positions");
        }
    }

    /**
     * Computes one layer (validates, then launches on the legacy default stream).
     *
     * @param q queries [B, Hq, D] fp16/bf16, one token per request
     * @param kShared shared prefix keys [P, Hkv, D], q's dtype
     * @param vShared shared prefix values [P, Hkv, D]
     * @param kPages suffix key pages [numPages, pageSize, Hkv, D]
     * @param vPages suffix value pages, kPages' shape and strides
     * @param spec options: causal (no-op), scale, softcap (see {@link #unsupportedReason})
     * @param out the output [B, Hq, D], q's dtype
     * @param lse the LSE fp32 [B, Hq] (head stride 1), natural log, or null
     */
    public void forward(DeviceTensor q, DeviceTensor kShared, DeviceTensor vShared, DeviceTensor kPages,
            DeviceTensor vPages, AttentionSpec spec, DeviceTensor out, DeviceTensor lse) {
        prepare(q, kShared, vShared, kPages, vPages, spec, out, lse).run();
    }

    /**
     * Validates one layer's tensors and prepares its launches (no CUDA call, no device allocation).
     *
     * @param q queries [B, Hq, D] fp16/bf16
     * @param kShared shared prefix keys [P, Hkv, D] (null allowed when P = 0)
     * @param vShared shared prefix values [P, Hkv, D] (null allowed when P = 0)
     * @param kPages suffix key pages [numPages, pageSize, Hkv, D]
     * @param vPages suffix value pages
     * @param spec the options
     * @param out the output [B, Hq, D]
     * @param lse fp32 [B, Hq] or null
     * @return the prepared layer; {@link Layer#run()} may be called repeatedly
     * @throws IllegalArgumentException naming the bad argument
     * @throws UnsupportedOperationException for an option this path does not compute
     * @throws IllegalStateException after {@link #close()}
     */
    public Layer prepare(DeviceTensor q, DeviceTensor kShared, DeviceTensor vShared, DeviceTensor kPages,
            DeviceTensor vPages, AttentionSpec spec, DeviceTensor out, DeviceTensor lse) {
        checkOpen();
        Objects.requireNonNull(q, "query");
        Objects.requireNonNull(out, "output");
        Objects.requireNonNull(spec, "spec");
        String why = unsupportedReason(spec);
        if (why != null) {
            throw new UnsupportedOperationException(why);
        }
        int b = table.getBatchSize();
        long[] qShape = {b, queryHeads, headDim};
        if (q.rank() != 3 || !Arrays.equals(q.getShape(), qShape)) {
            throw new IllegalArgumentException("query must be [B, Hq, D] = " + DeviceTensor.format(qShape)
                    + " (one token per request, the plan's batch and heads), got " + DeviceTensor.format(q.getShape()));
        }
        if (q.getDevice() != device) {
            throw new IllegalArgumentException("query is on " + (q.getDevice() < 0 ? "the host" : "cuda:"
                    + q.getDevice()) + " but the plan is on cuda:" + device);
        }
        DeviceDataType type = q.getDataType();
        if (type.byteSize() != 2) {
            throw new UnsupportedOperationException("dtype " + type + " not supported by the shared-prefix decode;"
                    + " supported: fp16, bf16");
        }
        long[] prefixShape = {prefixLen, kvHeads, headDim};
        if (prefixLen > 0) {
            Objects.requireNonNull(kShared, "kShared");
            Objects.requireNonNull(vShared, "vShared");
            for (Object[] t : new Object[][] {{"kShared", kShared}, {"vShared", vShared}}) {
                DeviceTensor x = (DeviceTensor) t[1];
                if (x.rank() != 3 || !Arrays.equals(x.getShape(), prefixShape)) {
                    throw new IllegalArgumentException(t[0] + " must be [P, Hkv, D] = " + DeviceTensor.format(
                            prefixShape) + " (the plan's prefix length and heads), got "
                            + DeviceTensor.format(x.getShape()));
                }
            }
        } else if ((kShared != null && kShared.numel() != 0) || (vShared != null && vShared.numel() != 0)) {
            throw new IllegalArgumentException("the plan has no prefix (P = 0) but kShared/vShared are not empty");
        }
        boolean withPrefix = prefixLen > 0 && b > 0;
        PagedDecodeKernel.Builder decode = PagedDecodeKernel.builder().setQuery(q).setKeyPages(kPages)
                .setValuePages(vPages).setSpec(spec).setWorkspace(workspace).optKeyOffset(prefixLen)
                .setOutput(out);
        if (!withPrefix) {
            return new Layer(null, null, null, decode.optLse(lse).build(), null);
        }
        if (lse != null && (lse.getDataType() != DeviceDataType.FP32
                || !Arrays.equals(lse.getShape(), new long[] {b, queryHeads}))) {
            throw new IllegalArgumentException("lse must be fp32 [" + b + ", " + queryHeads + "] [B, Hq], got "
                    + lse.getDataType() + " " + DeviceTensor.format(lse.getShape()));
        }
        int hq = queryHeads;
        int d = headDim;
        int n = split.states();
        AttentionSpec prefixSpec = spec.toBuilder().optCausal(false).optLayout(QkvLayout.BSHD).optReturnLse(false)
                .build();
        // partial outputs, memory [B, n, Hq, D]; seen by flash as [split, row = B, Hq, D] (bshd)
        long oState = (long) hq * d;
        long oRow = (long) n * oState;
        // partial LSEs, memory [B, n, Hq]: flash writes its bshd LSE [split, row = B, Hq] through strides
        long lState = hq;
        long lRow = (long) n * hq;
        FlashAttention main = flash(q, kShared, vShared, prefixSpec, 0, split.fullChunks(), split.chunk(), oState,
                oRow, lState, lRow);
        FlashAttention tail = split.tail() == 0 ? null : flash(q, kShared, vShared, prefixSpec,
                split.fullChunks(), 1, split.tail(), oState, oRow, lState, lRow);
        DeviceTensor po = DeviceTensor.fromDevicePointer(memory.partialO(), new long[] {b, n, hq, d},
                new long[] {oRow, oState, d, 1}, type, device);
        DeviceTensor pl = DeviceTensor.fromDevicePointer(memory.partialLse(), new long[] {b, n, hq},
                new long[] {lRow, lState, 1}, DeviceDataType.FP32, device);
        DeviceTensor preO = DeviceTensor.fromDevicePointer(memory.prefixO(), qShape,
                DeviceTensor.contiguousStrides(qShape),
                type, device);
        long[] lseShape = {b, hq};
        DeviceTensor preL = DeviceTensor.fromDevicePointer(memory.prefixLse(), lseShape,
                DeviceTensor.contiguousStrides(lseShape), DeviceDataType.FP32, device);
        DeviceTensor sufL = DeviceTensor.fromDevicePointer(memory.suffixLse(), lseShape,
                DeviceTensor.contiguousStrides(lseShape), DeviceDataType.FP32, device);
        MergeStateKernel prefixMerge = MergeStateKernel.mergeStates(po, pl, preO, preL);
        PagedDecodeKernel suffix = decode.optLse(sufL).build();
        MergeStateKernel finalMerge = MergeStateKernel.mergeState(preO, preL, out, sufL, out, lse);
        return new Layer(main, tail, prefixMerge, suffix, finalMerge);
    }

    /** One flash call over {@code count} chunks of {@code len} keys starting at chunk {@code first}. */
    private FlashAttention flash(DeviceTensor q, DeviceTensor k, DeviceTensor v, AttentionSpec spec, int first,
            int count, int len, long oState, long oRow, long lState, long lRow) {
        int b = table.getBatchSize();
        long start = (long) first * split.chunk();
        DeviceTensor qs = DeviceTensor.fromDevicePointer(q.getAddress(), new long[] {count, b, queryHeads, headDim},
                new long[] {0, q.stride(0), q.stride(1), q.stride(2)}, q.getDataType(), device);
        DeviceTensor os = DeviceTensor.fromDevicePointer(memory.partialO() + 2L * first * oState,
                new long[] {count, b, queryHeads, headDim}, new long[] {oState, oRow, headDim, 1}, q.getDataType(),
                device);
        DeviceTensor ls = DeviceTensor.fromDevicePointer(memory.partialLse() + 4L * first * lState,
                new long[] {count, b, queryHeads}, new long[] {lState, lRow, 1}, DeviceDataType.FP32, device);
        return FlashAttention.builder().setQuery(qs).setKey(chunks(k, start, count, len))
                .setValue(chunks(v, start, count, len)).setOutput(os).optLse(ls).setSpec(spec)
                .optPackGqa(FlashDispatch.Variant.of(spec) == FlashDispatch.Variant.PLAIN).build(); // softcap: unpacked
    }

    /** Views keys [start, start + count * len) of a [P, Hkv, D] tensor as [count, len, Hkv, D]. */
    private static DeviceTensor chunks(DeviceTensor x, long start, int count, int len) {
        long[] s = x.getStrides();
        return DeviceTensor.fromDevicePointer(x.getAddress() + start * s[0] * x.getDataType().byteSize(),
                new long[] {count, len, x.size(1), x.size(2)}, new long[] {len * s[0], s[0], s[1], s[2]},
                x.getDataType(), x.getDevice());
    }

    /**
     * Returns the prefix split.
     *
     * @return the plan
     */
    public SharedPrefixSplit getSplit() {
        return split;
    }

    /**
     * Returns the suffix decode's workspace (page table upload and split-KV schedule).
     *
     * @return the workspace
     */
    public PagedDecodeKernel.DecodeStep getWorkspace() {
        return workspace;
    }

    /**
     * Returns the shared prefix length.
     *
     * @return P
     */
    public int getPrefixLength() {
        return prefixLen;
    }

    /**
     * Returns whether the plan is still usable.
     *
     * @return false after {@link #close()}
     */
    public boolean isOpen() {
        return !closed;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the shared-prefix decode plan is closed (end of step); begin a new one");
        }
    }

    /** Ends the step: waits for the device (through the workspace) and frees every buffer of the plan. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        workspace.close(); // synchronizes before freeing
        for (DeviceBuffer x : memory.owned()) {
            x.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "CudaSharedPrefixDecode{B=" + table.getBatchSize() + " P=" + prefixLen + " Hq=" + queryHeads
                + " Hkv=" + kvHeads + " D=" + headDim + " cuda:" + device + ", prefix " + split + ", suffix "
                + workspace.getSchedule() + "}";
    }

    /** One layer's prepared launches: prefix flash (1-2), prefix merge, suffix decode, final merge. */
    public final class Layer {
        private final FlashAttention main;
        private final FlashAttention tail;
        private final MergeStateKernel prefixMerge;
        private final PagedDecodeKernel suffix;
        private final MergeStateKernel finalMerge;
        private boolean synchronize;

        private Layer(FlashAttention main, FlashAttention tail, MergeStateKernel prefixMerge,
                PagedDecodeKernel suffix, MergeStateKernel finalMerge) {
            this.main = main;
            this.tail = tail;
            this.prefixMerge = prefixMerge;
            this.suffix = suffix;
            this.finalMerge = finalMerge;
        }

        /**
         * Waits for the launches in {@link #run()} and surfaces asynchronous errors there (tests).
         *
         * @param synchronize true to synchronize after the last launch
         * @return this
         */
        public Layer optSynchronize(boolean synchronize) {
            this.synchronize = synchronize;
            return this;
        }

        /**
         * Launches the layer on the legacy default stream.
         *
         * @throws IllegalStateException after the plan's {@link CudaSharedPrefixDecode#close()} or without CUDA
         * @throws CudaException on a CUDA error
         */
        public void run() {
            checkOpen();
            CudaRuntime.bind(device);
            if (main != null) {
                main.run();
            }
            if (tail != null) {
                tail.run();
            }
            if (prefixMerge != null) {
                prefixMerge.run();
            }
            suffix.run();
            if (finalMerge != null) {
                finalMerge.run();
            }
            if (synchronize) {
                CudaRuntime.synchronize("shared-prefix decode");
            }
        }

        /**
         * Returns the prefix flash calls (the full chunks, then the tail chunk), empty without a prefix.
         *
         * @return 0, 1 or 2 calls
         */
        public FlashAttention[] getPrefixCalls() {
            return main == null ? new FlashAttention[0] : tail == null ? new FlashAttention[] {main}
                    : new FlashAttention[] {main, tail};
        }

        /**
         * Returns the merge of the prefix's split states, or null without a prefix.
         *
         * @return the merge
         */
        public MergeStateKernel getPrefixMerge() {
            return prefixMerge;
        }

        /**
         * Returns the suffix decode.
         *
         * @return the decode call
         */
        public PagedDecodeKernel getSuffixDecode() {
            return suffix;
        }

        /**
         * Returns the merge of the prefix state into the suffix output, or null without a prefix.
         *
         * @return the merge
         */
        public MergeStateKernel getFinalMerge() {
            return finalMerge;
        }
    }
}
