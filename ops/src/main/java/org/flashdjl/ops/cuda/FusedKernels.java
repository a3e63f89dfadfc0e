package org.flashdjl.ops.cuda;

import java.util.Objects;

/**
 * The fused transformer kernels ({@code ops/src/main/cuda/fused_ops.cu}) over device memory: RMSNorm (optionally of
 * a residual sum), rotary embedding with the key/value store, and the gated activation of a packed gate/up
 * projection. They are the CUDA path of {@link org.flashdjl.ops.transformer.TransformerOps}, whose NDArray math
 * defines the semantics; use that class on NDArrays. Every check runs in the factory methods, before any CUDA call;
 * {@link Call#run()} launches one kernel on the legacy default stream (in order with DJL's eager ops).
 *
 * <p>All tensors of a call share one dtype (fp16, bf16 or fp32) and device; rows may have any stride, the last
 * axis has stride 1.
 */
public final class FusedKernels {

    /** The fatbin resource. */
    public static final String MODULE = "org/flashdjl/ops/cuda/fused_ops.fatbin";

    /** Most blocks of one gated-activation launch (a grid-stride loop covers the rest). */
    static final int ACT_MAX_BLOCKS = 132 * 16;

    /** {@code struct RmsNormParams} of {@code fused_params.h}. */
    public static final KernelStruct.Layout RMS_NORM = KernelStruct.Layout.of("RmsNormParams",
            "x", KernelStruct.Kind.POINTER, "residual", KernelStruct.Kind.POINTER,
            "weight", KernelStruct.Kind.POINTER, "out", KernelStruct.Kind.POINTER,
            "sum_out", KernelStruct.Kind.POINTER,
            "x_row_stride", KernelStruct.Kind.INT64, "residual_row_stride", KernelStruct.Kind.INT64,
            "out_row_stride", KernelStruct.Kind.INT64, "sum_row_stride", KernelStruct.Kind.INT64,
            "rows", KernelStruct.Kind.INT32, "hidden", KernelStruct.Kind.INT32, "eps", KernelStruct.Kind.FLOAT,
            "style", KernelStruct.Kind.INT32);

    /** {@code struct RopeStoreParams} of {@code fused_params.h}. */
    public static final KernelStruct.Layout ROPE_STORE = KernelStruct.Layout.of("RopeStoreParams",
            "qkv", KernelStruct.Kind.POINTER, "positions", KernelStruct.Kind.POINTER,
            "slots", KernelStruct.Kind.POINTER, "inv_freq", KernelStruct.Kind.POINTER,
            "q_out", KernelStruct.Kind.POINTER, "k_dst", KernelStruct.Kind.POINTER, "v_dst", KernelStruct.Kind.POINTER,
            "qkv_row_stride", KernelStruct.Kind.INT64, "q_out_row_stride", KernelStruct.Kind.INT64,
            "dst_slot_stride", KernelStruct.Kind.INT64, "dst_head_stride", KernelStruct.Kind.INT64,
            "tokens", KernelStruct.Kind.INT32, "q_heads", KernelStruct.Kind.INT32, "kv_heads", KernelStruct.Kind.INT32,
            "head_dim", KernelStruct.Kind.INT32, "attention_scaling", KernelStruct.Kind.FLOAT,
            "pad0", KernelStruct.Kind.INT32);

    /** {@code struct GatedActParams} of {@code fused_params.h}. */
    public static final KernelStruct.Layout GATED_ACT = KernelStruct.Layout.of("GatedActParams",
            "gate_up", KernelStruct.Kind.POINTER, "out", KernelStruct.Kind.POINTER,
            "in_row_stride", KernelStruct.Kind.INT64, "out_row_stride", KernelStruct.Kind.INT64,
            "rows", KernelStruct.Kind.INT32, "inter", KernelStruct.Kind.INT32, "act", KernelStruct.Kind.INT32,
            "pad0", KernelStruct.Kind.INT32);

    private FusedKernels() {}

    /** One validated launch. */
    public static final class Call {
        private final String kernel;
        private final KernelStruct params;
        private final int device;
        private final int gridX;

        Call(String kernel, KernelStruct params, int device, int gridX) {
            this.kernel = kernel;
            this.params = params;
            this.device = device;
            this.gridX = gridX;
        }

        /**
         * Returns the kernel this call launches.
         *
         * @return e.g. {@code "rms_norm_fp16"}
         */
        public String kernelName() {
            return kernel;
        }

        /**
         * Returns the parameter block.
         *
         * @return the struct
         */
        public KernelStruct getParams() {
            return params;
        }

        /**
         * Returns the number of blocks.
         *
         * @return grid x (0 launches nothing)
         */
        public int getGridX() {
            return gridX;
        }

        /**
         * Launches the kernel on the legacy default stream of the tensors' device.
         *
         * @throws IllegalStateException if CUDA is unavailable or the kernels are not built
         * @throws CudaException naming the driver call and kernel on a CUDA error
         */
        public void run() {
            if (gridX == 0) {
                return;
            }
            KernelModule.get(MODULE, device).getKernel(kernel).launch(gridX, 1, 1, params.toBytes());
        }
    }

    /**
     * Prepares an RMSNorm of rows, optionally of {@code x + residual} (then written to {@code sumOut}).
     *
     * @param x [rows, hidden]
     * @param residual [rows, hidden] or null
     * @param weight [hidden]
     * @param out [rows, hidden]; may be x itself
     * @param sumOut [rows, hidden] (required with a residual, else null); may be x or residual itself
     * @param eps the epsilon, {@code > 0}
     * @param gemmaStyle false: {@code w * T(normed)}; true: {@code T(normed * (1 + w))}
     * @return the call
     * @throws IllegalArgumentException naming the bad argument
     */
    public static Call rmsNorm(DeviceTensor x, DeviceTensor residual, DeviceTensor weight, DeviceTensor out,
            DeviceTensor sumOut, float eps, boolean gemmaStyle) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(out, "out");
        if ((residual == null) != (sumOut == null)) {
            throw new IllegalArgumentException("residual and sumOut go together: both or neither");
        }
        DeviceTensor[] all = {x, residual, weight, out, sumOut};
        String[] names = {"x", "residual", "weight", "out", "sumOut"};
        int device = commonDevice(names, all);
        DeviceDataType type = commonType(names, all);
        checkMatrix("x", x);
        long rows = x.size(0);
        long hidden = x.size(1);
        for (int i : new int[] {1, 3, 4}) {
            if (all[i] != null) {
                checkMatrix(names[i], all[i]);
                checkShape(names[i], all[i], rows, hidden);
            }
        }
        if (weight.rank() != 1 || weight.size(0) != hidden || (hidden > 1 && weight.stride(0) != 1)) {
            throw new IllegalArgumentException("weight must be a contiguous [" + hidden + "] vector, got "
                    + DeviceTensor.format(weight.getShape()));
        }
        if (!(eps > 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be a finite number > 0, got " + eps);
        }
        KernelStruct p = RMS_NORM.newStruct();
        p.set("x", x.getAddress()).set("weight", weight.getAddress()).set("out", out.getAddress());
        p.set("x_row_stride", x.stride(0)).set("out_row_stride", out.stride(0));
        if (residual != null) {
            p.set("residual", residual.getAddress()).set("sum_out", sumOut.getAddress());
            p.set("residual_row_stride", residual.stride(0)).set("sum_row_stride", sumOut.stride(0));
        }
        p.set("rows", toInt("rows", rows)).set("hidden", toInt("hidden", hidden)).setFloat("eps", eps);
        p.set("style", gemmaStyle ? 1 : 0);
        return new Call("rms_norm_" + type.shortName(), p, device, (int) rows);
    }

    /**
     * Prepares the rotary embedding of a packed projection with the key/value store.
     *
     * @param qkv [tokens, >= (qHeads + 2 kvHeads) * headDim]: q heads, then k heads, then v heads
     * @param positions int32 [tokens]
     * @param slots int32 [tokens] destination slots (negative: not stored), or null for slot = token index
     * @param invFreq fp32 [headDim / 2]
     * @param qOut [tokens, qHeads, headDim] (head stride headDim)
     * @param kDst keys [slots, kvHeads, headDim] (any slot and head strides)
     * @param vDst values, kDst's shape and strides
     * @param qHeads query heads
     * @param kvHeads key/value heads
     * @param attentionScaling the factor on cos and sin (1 unless the RoPE scaling says otherwise)
     * @return the call
     * @throws IllegalArgumentException naming the bad argument
     */
    public static Call ropeStore(DeviceTensor qkv, DeviceTensor positions, DeviceTensor slots, DeviceTensor invFreq,
            DeviceTensor qOut, DeviceTensor kDst, DeviceTensor vDst, int qHeads, int kvHeads,
            float attentionScaling) {
        Objects.requireNonNull(qkv, "qkv");
        Objects.requireNonNull(positions, "positions");
        Objects.requireNonNull(invFreq, "invFreq");
        Objects.requireNonNull(qOut, "qOut");
        Objects.requireNonNull(kDst, "kDst");
        Objects.requireNonNull(vDst, "vDst");
        String[] names = {"qkv", "positions", "slots", "invFreq", "qOut", "kDst", "vDst"};
        DeviceTensor[] all = {qkv, positions, slots, invFreq, qOut, kDst, vDst};
        int device = commonDevice(names, all);
        DeviceDataType type = commonType(new String[] {"qkv", "qOut", "kDst", "vDst"},
                new DeviceTensor[] {qkv, qOut, kDst, vDst});
        if (qHeads < 1 || kvHeads < 1) {
            throw new IllegalArgumentException("qHeads and kvHeads must be >= 1, got " + qHeads + ", " + kvHeads);
        }
        checkMatrix("qkv", qkv);
        long tokens = qkv.size(0);
        if (qOut.rank() != 3 || qOut.size(0) != tokens || qOut.size(1) != qHeads) {
            throw new IllegalArgumentException("qOut must be [" + tokens + ", " + qHeads + ", headDim], got "
                    + DeviceTensor.format(qOut.getShape()));
        }
        long d = qOut.size(2);
        if (d < 2 || d % 2 != 0 || qOut.stride(2) != 1 || (qHeads > 1 && qOut.stride(1) != d)) {
            throw new IllegalArgumentException("qOut [" + tokens + ", " + qHeads + ", " + d + "] needs an even head"
                    + " dim >= 2 and head stride " + d + ", got strides " + DeviceTensor.format(qOut.getStrides()));
        }
        long width = (qHeads + 2L * kvHeads) * d;
        if (qkv.size(1) < width) {
            throw new IllegalArgumentException("qkv has " + qkv.size(1) + " columns; " + qHeads + " + 2 x " + kvHeads
                    + " heads of dim " + d + " need " + width);
        }
        checkIndex("positions", positions, tokens);
        if (slots != null) {
            checkIndex("slots", slots, tokens);
        }
        if (invFreq.getDataType() != DeviceDataType.FP32 || invFreq.rank() != 1 || invFreq.size(0) != d / 2
                || (d > 2 && invFreq.stride(0) != 1)) {
            throw new IllegalArgumentException("invFreq must be contiguous fp32 [" + d / 2 + "], got "
                    + invFreq.getDataType() + " " + DeviceTensor.format(invFreq.getShape()));
        }
        for (int i : new int[] {5, 6}) {
            DeviceTensor t = all[i];
            if (t.rank() != 3 || t.size(1) != kvHeads || t.size(2) != d || t.stride(2) != 1) {
                throw new IllegalArgumentException(names[i] + " must be [slots, " + kvHeads + ", " + d
                        + "] with head-dim stride 1, got " + DeviceTensor.format(t.getShape()) + " strides "
                        + DeviceTensor.format(t.getStrides()));
            }
            t.checkNonNegativeStrides(names[i]);
        }
        if (kDst.stride(0) != vDst.stride(0) || kDst.stride(1) != vDst.stride(1)
                || kDst.size(0) != vDst.size(0)) {
            throw new IllegalArgumentException("kDst " + DeviceTensor.format(kDst.getShape()) + " strides "
                    + DeviceTensor.format(kDst.getStrides()) + " and vDst " + DeviceTensor.format(vDst.getShape())
                    + " strides " + DeviceTensor.format(vDst.getStrides()) + " must match");
        }
        if (slots == null && kDst.size(0) < tokens) {
            throw new IllegalArgumentException("without slots token t goes to slot t: kDst has " + kDst.size(0)
                    + " slots for " + tokens + " tokens");
        }
        if (!(attentionScaling > 0) || Float.isInfinite(attentionScaling)) {
            throw new IllegalArgumentException("attentionScaling must be a finite number > 0, got "
                    + attentionScaling);
        }
        KernelStruct p = ROPE_STORE.newStruct();
        p.set("qkv", qkv.getAddress()).set("positions", positions.getAddress())
                .set("slots", slots == null ? 0 : slots.getAddress()).set("inv_freq", invFreq.getAddress())
                .set("q_out", qOut.getAddress()).set("k_dst", kDst.getAddress()).set("v_dst", vDst.getAddress());
        p.set("qkv_row_stride", qkv.stride(0)).set("q_out_row_stride", qOut.stride(0))
                .set("dst_slot_stride", kDst.stride(0)).set("dst_head_stride", kDst.stride(1));
        p.set("tokens", toInt("tokens", tokens)).set("q_heads", qHeads).set("kv_heads", kvHeads)
                .set("head_dim", toInt("head dim", d)).setFloat("attention_scaling", attentionScaling);
        return new Call("rope_store_" + type.shortName(), p, device, (int) tokens);
    }

    /**
     * Prepares the gated activation {@code out = T(T(act(gate)) * up)} of a packed [gate | up] projection.
     *
     * @param gateUp [rows, >= 2 inter]
     * @param out [rows, inter]
     * @param gelu false: SiLU; true: GELU, tanh approximation
     * @return the call
     * @throws IllegalArgumentException naming the bad argument
     */
    public static Call gatedActivation(DeviceTensor gateUp, DeviceTensor out, boolean gelu) {
        Objects.requireNonNull(gateUp, "gateUp");
        Objects.requireNonNull(out, "out");
        String[] names = {"gateUp", "out"};
        DeviceTensor[] all = {gateUp, out};
        int device = commonDevice(names, all);
        DeviceDataType type = commonType(names, all);
        checkMatrix("gateUp", gateUp);
        checkMatrix("out", out);
        long rows = gateUp.size(0);
        long inter = out.size(1);
        if (out.size(0) != rows || gateUp.size(1) < 2 * inter) {
            throw new IllegalArgumentException("gateUp " + DeviceTensor.format(gateUp.getShape()) + " and out "
                    + DeviceTensor.format(out.getShape()) + " must be [rows, >= 2 inter] and [rows, inter]");
        }
        KernelStruct p = GATED_ACT.newStruct();
        p.set("gate_up", gateUp.getAddress()).set("out", out.getAddress());
        p.set("in_row_stride", gateUp.stride(0)).set("out_row_stride", out.stride(0));
        p.set("rows", toInt("rows", rows)).set("inter", toInt("inter", inter)).set("act", gelu ? 1 : 0);
        long threads = 256;
        long blocks = Math.min(ACT_MAX_BLOCKS, (rows * inter + threads - 1) / threads);
        return new Call("gated_act_" + type.shortName(), p, device, (int) blocks);
    }

    private static int commonDevice(String[] names, DeviceTensor[] all) {
        int device = Integer.MIN_VALUE;
        String first = null;
        for (int i = 0; i < all.length; i++) {
            if (all[i] == null) {
                continue;
            }
            if (all[i].getDevice() < 0) {
                throw new IllegalArgumentException(names[i] + " is host memory; the fused kernels need CUDA memory");
            }
            if (first == null) {
                device = all[i].getDevice();
                first = names[i];
            } else if (all[i].getDevice() != device) {
                throw new IllegalArgumentException(names[i] + " is on cuda:" + all[i].getDevice() + " but " + first
                        + " is on cuda:" + device);
            }
        }
        return device;
    }

    private static DeviceDataType commonType(String[] names, DeviceTensor[] all) {
        DeviceDataType type = null;
        String first = null;
        for (int i = 0; i < all.length; i++) {
            if (all[i] == null) {
                continue;
            }
            DeviceDataType t = all[i].getDataType();
            if (type == null) {
                if (t != DeviceDataType.FP16 && t != DeviceDataType.BF16 && t != DeviceDataType.FP32) {
                    throw new IllegalArgumentException(names[i] + " has dtype " + t
                            + "; the fused kernels take fp16, bf16 or fp32");
                }
                type = t;
                first = names[i];
            } else if (t != type) {
                throw new IllegalArgumentException(names[i] + " has dtype " + t + " but " + first + " has " + type);
            }
        }
        return type;
    }

    private static void checkMatrix(String name, DeviceTensor t) {
        if (t.rank() != 2) {
            throw new IllegalArgumentException(name + " must be a matrix [rows, cols], got "
                    + DeviceTensor.format(t.getShape()));
        }
        if (t.size(1) > 1 && t.stride(1) != 1) {
            throw new IllegalArgumentException(name + " must have column stride 1, got strides "
                    + DeviceTensor.format(t.getStrides()));
        }
        t.checkNonNegativeStrides(name);
    }

    private static void checkShape(String name, DeviceTensor t, long rows, long cols) {
        if (t.size(0) != rows || t.size(1) != cols) {
            throw new IllegalArgumentException(name + " must be [" + rows + ", " + cols + "] like x, got "
                    + DeviceTensor.format(t.getShape()));
        }
    }

    private static void checkIndex(String name, DeviceTensor t, long tokens) {
        if (t.getDataType() != DeviceDataType.INT32 || t.rank() != 1 || t.size(0) != tokens
                || (tokens > 1 && t.stride(0) != 1)) {
            throw new IllegalArgumentException(name + " must be contiguous int32 [" + tokens + "], got "
                    + t.getDataType() + " " + DeviceTensor.format(t.getShape()));
        }
    }

    private static int toInt(String name, long v) {
        if (v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " = " + v + " exceeds the kernels' int32 range");
        }
        return (int) v;
    }
}
