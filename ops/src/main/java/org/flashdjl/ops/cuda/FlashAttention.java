package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.Objects;

/**
 * Flash attention forward over raw device memory ({@link DeviceTensor}s): the launch path that the {@code flash}
 * backend uses for NDArrays and the GPU tests use for JCuda memory.
 *
 * <pre>{@code
 * FlashAttention.builder()
 *         .setQuery(q).setKey(k).setValue(v).setOutput(o) // [B, Hq, Lq, D] / [B, Hkv, Lk, D] in spec.getLayout()
 *         .setSpec(spec)
 *         .optLse(lse)                                     // fp32, q's shape without D: [B, Hq, Lq] / [B, Lq, Hq]
 *         .build()                                         // every check, no CUDA call
 *         .run(workspace);                                 // one launch on stream 0; offsets/slopes in workspace
 * }</pre>
 *
 * <p>Dense tensors are rank 4 in the spec's layout ({@code bhsd} [B, H, L, D] or {@code bshd} [B, L, H, D]) with
 * any non-negative strides (so a {@link DeviceTensor#permute} of bshd memory is a valid bhsd input) and head-dim
 * stride 1. Varlen tensors ({@link Builder#optVarlen}) are packed [totalTokens, H, D]. The LSE has the output's
 * shape without its last axis (bhsd [B, Hq, Lq], bshd [B, Lq, Hq], varlen [totalQ, Hq]) and any non-negative
 * strides.
 * The semantics are {@link AttentionSpec}'s; queries are bottom-right aligned against the keys unless
 * {@link Builder#optPositions} places a dense block at global positions (ring attention, chunked prefill against a
 * cache: windows, sinks and ALiBi then follow the whole sequence, as {@code AttentionProblem.Builder.optPositions}
 * defines them).
 *
 * <p>The kernels read 16 bytes at a time: base addresses must be 16-byte aligned and the batch, head and row
 * strides multiples of 8 elements. The CUDA grid limits batch and query heads to 65535 each.
 */
public final class FlashAttention {

    /** {@code struct FlashFwdParams} ({@code flash_params.h}): the one argument of every flash forward kernel. */
    public static final KernelStruct.Layout LAYOUT = KernelStruct.Layout.of("FlashFwdParams",
            "q", KernelStruct.Kind.POINTER, "k", KernelStruct.Kind.POINTER, "v", KernelStruct.Kind.POINTER,
            "o", KernelStruct.Kind.POINTER, "lse", KernelStruct.Kind.POINTER, "cu_seqlens_q", KernelStruct.Kind.POINTER,
            "cu_seqlens_k", KernelStruct.Kind.POINTER, "alibi_slopes", KernelStruct.Kind.POINTER,
            "q_batch_stride", KernelStruct.Kind.INT64, "q_head_stride", KernelStruct.Kind.INT64,
            "q_row_stride", KernelStruct.Kind.INT64, "k_batch_stride", KernelStruct.Kind.INT64,
            "k_head_stride", KernelStruct.Kind.INT64, "k_row_stride", KernelStruct.Kind.INT64,
            "v_batch_stride", KernelStruct.Kind.INT64, "v_head_stride", KernelStruct.Kind.INT64,
            "v_row_stride", KernelStruct.Kind.INT64, "o_batch_stride", KernelStruct.Kind.INT64,
            "o_head_stride", KernelStruct.Kind.INT64, "o_row_stride", KernelStruct.Kind.INT64,
            "lse_batch_stride", KernelStruct.Kind.INT64, "lse_head_stride", KernelStruct.Kind.INT64,
            "lse_row_stride", KernelStruct.Kind.INT64,
            "batch", KernelStruct.Kind.INT32, "hq", KernelStruct.Kind.INT32, "hkv", KernelStruct.Kind.INT32,
            "lq", KernelStruct.Kind.INT32, "lk", KernelStruct.Kind.INT32, "mask", KernelStruct.MASK_PARAMS,
            "head_dim", KernelStruct.Kind.INT32);

    /** The CUDA grid's y and z limit: query heads and batch. */
    public static final int MAX_GRID_YZ = 65535;

    private static final Logger logger = LoggerFactory.getLogger(FlashAttention.class);

    private final DeviceTensor q;
    private final DeviceTensor k;
    private final DeviceTensor v;
    private final DeviceTensor o;
    private final DeviceTensor lse;
    private final AttentionSpec spec;
    private final int[] cuSeqlensQ; // [B + 1] or null
    private final int[] cuSeqlensK; // [B + 1] or null
    private final boolean synchronize;
    private final boolean packGqa;
    private final int device;
    private final DeviceDataType dataType;
    private final int batch;
    private final int hq;
    private final int hkv;
    private final int lq; // varlen: max
    private final int lk; // varlen: max
    private final int headDim;
    private final boolean positionsMatter;
    private final KernelStruct params;

    private FlashAttention(Builder b, int batch, int hq, int hkv, int lq, int lk, int headDim, KernelStruct params) {
        this.q = b.q;
        this.k = b.k;
        this.v = b.v;
        this.o = b.o;
        this.lse = b.lse;
        this.spec = b.spec;
        this.cuSeqlensQ = b.cuQ;
        this.cuSeqlensK = b.cuK;
        this.synchronize = b.synchronize;
        this.packGqa = b.packGqa;
        this.device = b.q.getDevice();
        this.dataType = b.q.getDataType();
        this.batch = batch;
        this.hq = hq;
        this.hkv = hkv;
        this.lq = lq;
        this.lk = lk;
        this.headDim = headDim;
        this.params = params;
        this.positionsMatter = positionsMatter(b.spec, params.get("mask.query_shift").intValue(),
                params.get("mask.key_offset").intValue());
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
     * Returns the kernel this call runs on a device of the given compute capability.
     *
     * @param computeCapability e.g. 90
     * @return the kernel name
     */
    public String kernelName(int computeCapability) {
        return kernel(computeCapability).name();
    }

    private FlashDispatch.KernelRef kernel(int computeCapability) {
        if (packed(computeCapability)) {
            return FlashDispatch.kernel(new FlashDispatch.Key(FlashDispatch.Arch.of(computeCapability), dataType,
                    headDim, FlashDispatch.Variant.PACKED));
        }
        return FlashDispatch.kernel(FlashDispatch.key(computeCapability, dataType, headDim, spec, positionsMatter));
    }

    /** Whether this call runs GQA-packed on a device: asked for, and a packed kernel exists for it. */
    private boolean packed(int computeCapability) {
        return packGqa && hq > hkv && FlashDispatch.hasPacked(computeCapability, dataType, headDim);
    }

    // Whether a call's positions change what it computes: shifted queries under causality, windows or ALiBi (all
    // relative to the query position), or keys not from 0 with sinks (global key indices) under a left window.
    private static boolean positionsMatter(AttentionSpec spec, int queryShift, int keyOffset) {
        boolean relative = spec.isCausal() || spec.getWindowLeft() >= 0 || spec.getWindowRight() >= 0
                || spec.hasAlibi();
        boolean sinks = spec.getSinkTokens() > 0 && spec.getWindowLeft() >= 0;
        return (queryShift != 0 && relative) || (keyOffset != 0 && sinks);
    }

    /**
     * Returns the parameter block as built: every pointer of the call's tensors is set; the device addresses of
     * the sequence offsets and ALiBi slopes are 0 here and filled per launch (see {@link #run(DeviceArguments,
     * KernelLauncher)}).
     *
     * @return the parameters
     */
    public KernelStruct getParams() {
        return params;
    }

    /**
     * Launches the kernel on the legacy default stream of the inputs' device (binding its primary context to this
     * thread); with {@link Builder#optSynchronize(boolean)} waits for it and surfaces asynchronous errors. A call
     * with varlen offsets or ALiBi slopes uploads them into a temporary workspace that is freed after a device
     * synchronisation: calls on a hot path pass their step's or operator's arguments to
     * {@link #run(DeviceArguments)} instead.
     *
     * @throws IllegalStateException if CUDA is unavailable or the kernels are not built
     * @throws UnsupportedOperationException if the device's arch has no kernel
     * @throws CudaException naming the driver call, kernel and {@code CUresult} on a CUDA error
     */
    public void run() {
        if (cuSeqlensQ == null && !spec.hasAlibi()) {
            run(null, KernelLauncher.CUDA);
            return;
        }
        try (DeviceWorkspace oneShot = new DeviceWorkspace(device)) {
            run(oneShot, KernelLauncher.CUDA);
        }
    }

    /**
     * Launches the kernel on the device, with the sequence offsets and ALiBi slopes in the given arguments (copied
     * only when the slot does not hold them yet: the layers of a step share one upload).
     *
     * @param arguments where the offsets and slopes go, e.g. the step's {@link DeviceWorkspace}
     * @throws CudaException on a CUDA error
     */
    public void run(DeviceArguments arguments) {
        run(arguments, KernelLauncher.CUDA);
    }

    /**
     * Prepares the launch (the kernel for the launcher's compute capability, the offsets and slopes placed in
     * {@code arguments} and their addresses written into a copy of the parameter block) and hands it to the
     * launcher: grid ({@code ceil(Lq / rowsPerBlock)}, Hq, batch), Lq the longest query sequence.
     *
     * @param arguments where the offsets and slopes go; may be null for calls without varlen and ALiBi
     * @param launcher what runs the kernel ({@link KernelLauncher#CUDA} on the device)
     */
    public void run(DeviceArguments arguments, KernelLauncher launcher) {
        int computeCapability = launcher.computeCapability(device);
        FlashDispatch.KernelRef ref = kernel(computeCapability);
        KernelStruct launch = params.copy();
        if (spec.hasAlibi() || cuSeqlensQ != null) {
            Objects.requireNonNull(arguments, "arguments (this call has varlen offsets or ALiBi slopes)");
        }
        if (spec.hasAlibi()) {
            launch.set("alibi_slopes",
                    arguments.fp32("flash.alibi_slopes", spec.getAlibiSlopes()).getAddress());
        }
        if (cuSeqlensQ != null) {
            launch.set("cu_seqlens_q", arguments.int32("flash.cu_seqlens_q", cuSeqlensQ)
                    .getAddress());
            launch.set("cu_seqlens_k", arguments.int32("flash.cu_seqlens_k", cuSeqlensK)
                    .getAddress());
        }
        boolean packed = packed(computeCapability);
        long rows = packed ? (long) lq * (hq / hkv) : lq; // packed: a key/value head's query heads are rows
        int heads = packed ? hkv : hq;
        if (logger.isTraceEnabled()) {
            logger.trace("launch {} grid (ceil({} / rows), {}, {}) {}", ref, rows, heads, batch, launch);
        }
        launcher.launch(device, ref, rows, heads, batch, launch.toBytes());
        if (synchronize) {
            launcher.synchronize(device, ref.name());
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "FlashAttention{" + dataType + " B=" + batch + " Hq=" + hq + " Hkv=" + hkv + " Lq=" + lq + " Lk=" + lk
                + " D=" + headDim + (cuSeqlensQ != null ? " varlen" : "") + " " + spec + "}";
    }

    /** Collects and validates the tensors and options of one call; {@code setX} are required. */
    public static final class Builder {
        private DeviceTensor q;
        private DeviceTensor k;
        private DeviceTensor v;
        private DeviceTensor o;
        private DeviceTensor lse;
        private AttentionSpec spec;
        private int[] cuQ;
        private int[] cuK;
        private Long queryStart; // null: bottom-right aligned
        private long keyStart;
        private boolean synchronize;
        private boolean packGqa;

        private Builder() {}

        /**
         * Sets the queries.
         *
         * @param q fp16/bf16 [B, Hq, Lq, D] (bhsd), [B, Lq, Hq, D] (bshd) or varlen [totalQ, Hq, D]
         * @return this builder
         */
        public Builder setQuery(DeviceTensor q) {
            this.q = q;
            return this;
        }

        /**
         * Sets the keys.
         *
         * @param k like q with Hkv heads and Lk keys; varlen [totalK, Hkv, D]
         * @return this builder
         */
        public Builder setKey(DeviceTensor k) {
            this.k = k;
            return this;
        }

        /**
         * Sets the values.
         *
         * @param v the shape of k
         * @return this builder
         */
        public Builder setValue(DeviceTensor v) {
            this.v = v;
            return this;
        }

        /**
         * Sets the output the kernel writes.
         *
         * @param o the shape and dtype of q
         * @return this builder
         */
        public Builder setOutput(DeviceTensor o) {
            this.o = o;
            return this;
        }

        /**
         * Sets what to compute; its layout decides how rank-4 tensors are read. The spec's {@code returnLse} is
         * ignored: {@link #optLse} decides.
         *
         * @param spec the spec
         * @return this builder
         */
        public Builder setSpec(AttentionSpec spec) {
            this.spec = spec;
            return this;
        }

        /**
         * Asks for the log-sum-exp.
         *
         * @param lse fp32, q's shape without its last axis: [B, Hq, Lq] (bhsd), [B, Lq, Hq] (bshd), [totalQ, Hq]
         *     (varlen); any non-negative strides; or null
         * @return this builder
         */
        public Builder optLse(DeviceTensor lse) {
            this.lse = lse;
            return this;
        }

        /**
         * Makes this a varlen call over packed sequences.
         *
         * @param cuSeqlensQ host int32 [B + 1] query offsets: 0, non-decreasing, ending at totalQ
         * @param cuSeqlensK host int32 [B + 1] key offsets ending at totalK
         * @return this builder
         */
        public Builder optVarlen(int[] cuSeqlensQ, int[] cuSeqlensK) {
            this.cuQ = Objects.requireNonNull(cuSeqlensQ, "cuSeqlensQ").clone();
            this.cuK = Objects.requireNonNull(cuSeqlensK, "cuSeqlensK").clone();
            return this;
        }

        /**
         * Places a dense call's queries and keys at global positions of a longer sequence (a block of ring
         * attention, a chunk of prefill against a cache): query row {@code i} sits at {@code queryStart + i}, key
         * column {@code j} is key {@code keyStart + j}; causality, windows and ALiBi use the positions, sinks the
         * global key indices ({@code AttentionProblem.Builder.optPositions}, {@link
         * org.flashdjl.ops.attention.MaskRule}). The default is bottom-right alignment: {@code queryStart = Lk - Lq},
         * {@code keyStart = 0}. Calls whose result depends on the positions run on the {@code positioned} kernels.
         *
         * @param queryStart the position of query row 0
         * @param keyStart the global index of key 0, {@code >= 0}
         * @return this builder
         */
        public Builder optPositions(long queryStart, long keyStart) {
            if (keyStart < 0) {
                throw new IllegalArgumentException("keyStart must be >= 0 (the global index of key 0), got "
                        + keyStart);
            }
            this.queryStart = queryStart;
            this.keyStart = keyStart;
            return this;
        }

        /**
         * Waits for the kernel in {@link FlashAttention#run()} and reports asynchronous errors there (tests).
         *
         * @param synchronize true to call {@code cuCtxSynchronize} after the launch
         * @return this builder
         */
        public Builder optSynchronize(boolean synchronize) {
            this.synchronize = synchronize;
            return this;
        }

        /**
         * Asks for GQA packing: each key/value head's {@code Hq / Hkv} query heads are computed as the rows of one
         * tile (FlashAttention-3's PackGQA), which fills the tile when there are few queries (decode-like calls)
         * and reads each key/value tile once per key/value head. The result is the same; it is a schedule. Only
         * for dense calls without a mask or options (the {@code plain} variant): {@link #build()} refuses others.
         * Devices and head dims without packed kernels (the Hopper kernels have them, hd 64, 128 and 256) run the plain
         * kernel.
         *
         * @param packGqa true to pack
         * @return this builder
         */
        public Builder optPackGqa(boolean packGqa) {
            this.packGqa = packGqa;
            return this;
        }

        /**
         * Validates everything that can be checked without the GPU and builds the call.
         *
         * @return the call
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         * @throws UnsupportedOperationException for a dtype or head dim without kernels
         */
        public FlashAttention build() {
            Objects.requireNonNull(q, "query");
            Objects.requireNonNull(k, "key");
            Objects.requireNonNull(v, "value");
            Objects.requireNonNull(o, "output");
            Objects.requireNonNull(spec, "spec");
            boolean varlen = cuQ != null;
            int device = q.getDevice();
            if (device < 0) {
                throw new IllegalArgumentException("query is host memory; flash needs CUDA device memory");
            }
            DeviceDataType type = q.getDataType();
            for (Object[] t : named()) {
                DeviceTensor x = (DeviceTensor) t[1];
                if (x != null && x.getDevice() != device) {
                    throw new IllegalArgumentException(t[0] + " is on " + where(x.getDevice()) + " but query is on "
                            + where(device) + "; all tensors must be on one device");
                }
            }
            for (Object[] t : named()) {
                DeviceTensor x = (DeviceTensor) t[1];
                if (x != null && x != lse && x.getDataType() != type) {
                    throw new IllegalArgumentException(t[0] + " has dtype " + x.getDataType() + " but query has "
                            + type + "; q, k, v and the output must share one dtype");
                }
            }
            if (lse != null && lse.getDataType() != DeviceDataType.FP32) {
                throw new IllegalArgumentException("lse must be fp32, got " + lse.getDataType());
            }
            int rank = varlen ? 3 : 4;
            String axes = varlen ? "[totalTokens, heads, dim] (varlen)" : spec.getLayout().axes();
            for (Object[] t : named()) {
                DeviceTensor x = (DeviceTensor) t[1];
                if (x != null && x != lse && x.rank() != rank) {
                    throw new IllegalArgumentException(t[0] + " must have rank " + rank + " " + axes + ", got "
                            + DeviceTensor.format(x.getShape()));
                }
            }
            int headAxis = varlen ? 1 : spec.getLayout().headAxis();
            int seqAxis = varlen ? 0 : spec.getLayout().seqAxis();
            int dimAxis = rank - 1;
            int headDim = toInt("head dim", q.size(dimAxis));
            int hq = toInt("query heads", q.size(headAxis));
            int hkv = toInt("key heads", k.size(headAxis));
            long totalQ = q.size(seqAxis);
            long totalK = k.size(seqAxis);
            if (!Arrays.equals(k.getShape(), v.getShape())) {
                throw new IllegalArgumentException("value shape " + DeviceTensor.format(v.getShape())
                        + " must equal key shape " + DeviceTensor.format(k.getShape())
                        + " (flash needs the value head dim to equal the query/key head dim)");
            }
            if (!Arrays.equals(q.getShape(), o.getShape())) {
                throw new IllegalArgumentException("output shape " + DeviceTensor.format(o.getShape())
                        + " must equal query shape " + DeviceTensor.format(q.getShape()));
            }
            if (k.size(dimAxis) != headDim) {
                throw new IllegalArgumentException("key head dim " + k.size(dimAxis) + " must equal query head dim "
                        + headDim);
            }
            if (hq == 0 || hkv == 0 || hq % hkv != 0) {
                throw new IllegalArgumentException("query heads (" + hq + ") must be a positive multiple of key/value"
                        + " heads (" + hkv + ")");
            }
            String why = FlashDispatch.unsupportedReason(type, headDim);
            if (why != null) {
                throw new UnsupportedOperationException(why);
            }
            if (spec.hasAlibi() && spec.getAlibiSlopes().length != hq) {
                throw new IllegalArgumentException("alibiSlopes has " + spec.getAlibiSlopes().length
                        + " slopes; it needs one per query head (" + hq + ")");
            }
            if (hq > MAX_GRID_YZ) {
                throw new IllegalArgumentException("query heads = " + hq + " exceeds the CUDA grid y limit "
                        + MAX_GRID_YZ);
            }
            int batch;
            long lq;
            long lk;
            if (varlen) {
                batch = cuQ.length - 1;
                checkOffsets("cuSeqlensQ", cuQ, totalQ, "query", -1);
                checkOffsets("cuSeqlensK", cuK, totalK, "key", cuQ.length);
                lq = maxLength(cuQ);
                lk = maxLength(cuK);
            } else {
                batch = toInt("batch", q.size(0));
                lq = totalQ;
                lk = totalK;
                if (k.size(0) != batch) {
                    throw new IllegalArgumentException("key batch " + k.size(0) + " != query batch " + batch);
                }
            }
            if (batch > MAX_GRID_YZ) {
                throw new IllegalArgumentException((varlen ? "number of sequences" : "batch") + " = " + batch
                        + " exceeds the CUDA grid z limit " + MAX_GRID_YZ);
            }
            int lqi = toInt(varlen ? "longest query sequence" : "query length", lq);
            int lki = toInt(varlen ? "longest key sequence" : "key length", lk);
            long queryShift = 0;
            if (queryStart != null) {
                if (varlen) {
                    throw new IllegalArgumentException("optPositions is for dense calls; varlen sequences are each"
                            + " bottom-right aligned");
                }
                if (keyStart + lki > Integer.MAX_VALUE || Math.abs(queryStart) + lqi > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("positions (queryStart " + queryStart + ", keyStart " + keyStart
                            + ") with " + lqi + " queries and " + lki + " keys exceed the kernels' int32 positions");
                }
                queryShift = queryStart - (keyStart + lki - lqi); // 0 = bottom-right aligned
            }
            if (varlen) {
                toInt("total query tokens (int32 offsets)", totalQ);
                toInt("total key tokens (int32 offsets)", totalK);
            }
            long[] lseShape = Arrays.copyOf(q.getShape(), rank - 1); // the output's shape without its last axis
            if (lse != null && !Arrays.equals(lse.getShape(), lseShape)) {
                throw new IllegalArgumentException("lse shape " + DeviceTensor.format(lse.getShape()) + " must be "
                        + DeviceTensor.format(lseShape) + ", the output's shape without its head dim ("
                        + (varlen ? "[totalQ, Hq]" : spec.getLayout() == QkvLayout.BHSD ? "[B, Hq, Lq]" : "[B, Lq, Hq]")
                        + ")");
            }
            for (Object[] t : named()) {
                DeviceTensor x = (DeviceTensor) t[1];
                if (x != null) {
                    if (x == lse) {
                        x.checkNonNegativeStrides((String) t[0]);
                    } else {
                        x.checkVectorLoads((String) t[0], "the flash kernels");
                    }
                }
            }

            KernelStruct p = LAYOUT.newStruct();
            p.set("q", q.getAddress()).set("k", k.getAddress()).set("v", v.getAddress()).set("o", o.getAddress())
                    .set("lse", lse == null ? 0 : lse.getAddress());
            strides(p, q, varlen, headAxis, seqAxis, "q");
            strides(p, k, varlen, headAxis, seqAxis, "k");
            strides(p, v, varlen, headAxis, seqAxis, "v");
            strides(p, o, varlen, headAxis, seqAxis, "o");
            if (lse != null) {
                strides(p, lse, varlen, headAxis, seqAxis, "lse");
            }
            p.set("batch", batch).set("hq", hq).set("hkv", hkv).set("lq", lqi).set("lk", lki).set("head_dim", headDim)
                    .setMask(spec, headDim).set("mask.key_offset", keyStart).set("mask.query_shift", queryShift);
            if (packGqa && (varlen || FlashDispatch.Variant.of(spec) != FlashDispatch.Variant.PLAIN)) {
                throw new IllegalArgumentException("GQA packing (optPackGqa) needs a dense call without mask or options"
                        + " (the plain variant); this call is " + (varlen ? "varlen" : "the "
                        + FlashDispatch.Variant.of(spec).shortName() + " variant (" + spec + ")"));
            }
            if (packGqa && (long) lqi * (hq / hkv) > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("GQA packing: Lq x Hq/Hkv = " + (long) lqi * (hq / hkv)
                        + " rows exceed int32");
            }
            return new FlashAttention(this, batch, hq, hkv, lqi, lki, headDim, p);
        }

        private Object[][] named() {
            return new Object[][] {{"query", q}, {"key", k}, {"value", v}, {"output", o}, {"lse", lse}};
        }

        private static String where(int device) {
            return device < 0 ? "the host" : "cuda:" + device;
        }

        // batch / head / row strides of a tensor (varlen: no batch stride) into <name>_{batch,head,row}_stride
        private static void strides(KernelStruct p, DeviceTensor t, boolean varlen, int headAxis, int seqAxis,
                String name) {
            p.set(name + "_batch_stride", varlen ? 0 : t.stride(0));
            p.set(name + "_head_stride", t.stride(headAxis));
            p.set(name + "_row_stride", t.stride(seqAxis));
        }

        private static void checkOffsets(String name, int[] offsets, long total, String of, int expectedLength) {
            if (offsets.length < 2) {
                throw new IllegalArgumentException(name + " must hold [batch + 1] >= 2 offsets, got "
                        + Arrays.toString(offsets));
            }
            if (expectedLength >= 0 && offsets.length != expectedLength) {
                throw new IllegalArgumentException(name + " has " + offsets.length
                        + " entries but cuSeqlensQ has " + expectedLength + "; both are [batch + 1]");
            }
            if (offsets[0] != 0) {
                throw new IllegalArgumentException(name + " must start at 0, got " + Arrays.toString(offsets));
            }
            for (int i = 1; i < offsets.length; i++) {
                if (offsets[i] < offsets[i - 1]) {
                    throw new IllegalArgumentException(name + " must be non-decreasing, got "
                            + Arrays.toString(offsets));
                }
            }
            if (offsets[offsets.length - 1] != total) {
                throw new IllegalArgumentException(name + " must end at the number of packed " + of + " tokens ("
                        + total + "), got " + Arrays.toString(offsets));
            }
        }

        private static long maxLength(int[] offsets) {
            long max = 0;
            for (int i = 1; i < offsets.length; i++) {
                max = Math.max(max, offsets[i] - offsets[i - 1]);
            }
            return max;
        }

        private static int toInt(String name, long value) {
            if (value > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + " = " + value + " exceeds the kernels' 32-bit limit "
                        + Integer.MAX_VALUE);
            }
            return (int) value;
        }
    }
}
