package org.flashdjl.ops.transformer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FusedKernels;
import org.flashdjl.ops.cuda.KernelModule;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Objects;

/**
 * The operators of a decoder layer around its matrix products and attention, each one fused pass: RMSNorm (of a
 * residual sum), rotary embedding with the key/value store, and the gated (SwiGLU / GeGLU) activation.
 *
 * <p>On CUDA NDArrays (fp16 or fp32, the fused kernels built) each call is one kernel launch on the legacy default
 * stream, in order with DJL's ops, on contiguous arrays; elsewhere (CPU, or kernels not built) it is the NDArray math below, which
 * defines the semantics. Results belong to the first input's manager. Rounding follows Hugging Face transformers'
 * eager modules: values are rounded to the activation dtype where those modules hold them between two ops.
 *
 * <pre>{@code
 * NDArray h = TransformerOps.addRmsNorm(x, attnOut, w, 1e-5f, NormStyle.LLAMA);  // x += attnOut; h = norm(x)
 * NDArray q = TransformerOps.ropeStore(qkv, 32, 8, positions, invFreq, 1f, slots, kPool, vPool); // [N, 32, D]
 * NDArray a = TransformerOps.gatedActivation(gateUp, GatedActivation.SILU);      // [N, inter]
 * }</pre>
 */
public final class TransformerOps {

    private static final Logger logger = LoggerFactory.getLogger(TransformerOps.class);

    private static volatile boolean warnedNotBuilt;

    private TransformerOps() {}

    /** How the RMSNorm weight applies. */
    public enum NormStyle {
        /** Llama, Mistral, Qwen2: {@code weight * T(x / rms)}. */
        LLAMA,
        /** Gemma: {@code T(x / rms * (1 + weight))}, all in fp32. */
        GEMMA
    }

    /** The activation of a gated MLP. */
    public enum GatedActivation {
        /** SwiGLU: {@code silu(gate) * up}. */
        SILU,
        /** GeGLU: {@code gelu_tanh(gate) * up} (Hugging Face's {@code gelu_pytorch_tanh}). */
        GELU_TANH
    }

    /**
     * Normalises rows: {@code x / sqrt(mean(x^2) + eps)} in fp32, then the weight as {@code style} says.
     *
     * @param x [..., hidden]
     * @param weight [hidden], x's dtype
     * @param eps the epsilon, {@code > 0}
     * @param style how the weight applies
     * @return [..., hidden], x's dtype, on x's manager
     */
    public static NDArray rmsNorm(NDArray x, NDArray weight, float eps, NormStyle style) {
        checkNorm(x, null, weight, eps, style);
        if (useKernels(x, weight)) {
            Shape s = x.getShape();
            NDArray out = x.getManager().create(s, x.getDataType(), x.getDevice());
            FusedKernels.rmsNorm(matrix(x), null, DeviceTensor.fromNDArray(weight), matrix(out), null, eps,
                    style == NormStyle.GEMMA).run();
            return out;
        }
        return normMath(x, weight, eps, style);
    }

    /**
     * Adds {@code delta} to the residual stream in place ({@code residual = T(residual + delta)}) and returns the
     * RMSNorm of the new residual: the residual connection of one sub-layer fused with the next sub-layer's norm.
     *
     * @param residual [..., hidden], updated in place (contiguous)
     * @param delta [..., hidden], residual's shape and dtype
     * @param weight [hidden]
     * @param eps the epsilon, {@code > 0}
     * @param style how the weight applies
     * @return the normalised residual [..., hidden], on residual's manager
     */
    public static NDArray addRmsNorm(NDArray residual, NDArray delta, NDArray weight, float eps, NormStyle style) {
        checkNorm(residual, delta, weight, eps, style);
        if (useKernels(residual, delta, weight)) {
            NDArray out = residual.getManager().create(residual.getShape(), residual.getDataType(),
                    residual.getDevice());
            DeviceTensor r = matrix(residual);
            FusedKernels.rmsNorm(r, matrix(delta), DeviceTensor.fromNDArray(weight), matrix(out), r, eps,
                    style == NormStyle.GEMMA).run();
            return out;
        }
        residual.addi(delta);
        return normMath(residual, weight, eps, style);
    }

    /**
     * Applies the rotary embedding (rotate-half pairs {@code (j, j + D/2)}, angle {@code fp32(position *
     * invFreq[j])}, cos and sin times {@code attentionScaling}) to the query and key heads of a packed projection,
     * and stores the rotated keys and the values at each token's slot of {@code kDst} / {@code vDst}.
     *
     * @param qkv [N, (qHeads + 2 kvHeads) * D]: q heads, then k heads, then v heads
     * @param qHeads query heads
     * @param kvHeads key/value heads
     * @param positions int32 [N] the tokens' positions
     * @param invFreq fp32 [D / 2] the inverse frequencies (the RoPE scaling applied)
     * @param attentionScaling the factor on cos and sin (1 unless the RoPE scaling defines one)
     * @param slots int32 [N] each token's slot in kDst/vDst, negative to store nothing; or null for slot = token
     * @param kDst keys [S, kvHeads, D] (e.g. a page pool [pages, pageSize, kvHeads, D] viewed as slots), written
     * @param vDst values [S, kvHeads, D], written
     * @return the rotated queries [N, qHeads, D] on qkv's manager
     */
    public static NDArray ropeStore(NDArray qkv, int qHeads, int kvHeads, NDArray positions, NDArray invFreq,
            float attentionScaling, NDArray slots, NDArray kDst, NDArray vDst) {
        Objects.requireNonNull(qkv, "qkv");
        Objects.requireNonNull(positions, "positions");
        Objects.requireNonNull(invFreq, "invFreq");
        Objects.requireNonNull(kDst, "kDst");
        Objects.requireNonNull(vDst, "vDst");
        Shape ks = kDst.getShape();
        if (ks.dimension() != 3 || !ks.equals(vDst.getShape())) {
            throw new IllegalArgumentException("kDst and vDst must both be [slots, kvHeads, headDim], got " + ks
                    + " and " + vDst.getShape());
        }
        long d = ks.get(2);
        long n = qkv.getShape().get(0);
        if (qkv.getShape().dimension() != 2 || qkv.getShape().get(1) != (qHeads + 2L * kvHeads) * d
                || ks.get(1) != kvHeads) {
            throw new IllegalArgumentException("qkv must be [N, (" + qHeads + " + 2 x " + kvHeads + ") x " + d
                    + "] for kDst " + ks + ", got " + qkv.getShape());
        }
        checkIndex("positions", positions, n);
        if (slots != null) {
            checkIndex("slots", slots, n);
        } else if (ks.get(0) < n) {
            throw new IllegalArgumentException("without slots token t goes to slot t: kDst has " + ks.get(0)
                    + " slots for " + n + " tokens");
        }
        if (invFreq.getDataType() != DataType.FLOAT32 || !invFreq.getShape().equals(new Shape(d / 2))) {
            throw new IllegalArgumentException("invFreq must be fp32 [" + d / 2 + "], got " + invFreq.getDataType()
                    + " " + invFreq.getShape());
        }
        checkSameDevice("qkv", qkv, "kDst", kDst, "vDst", vDst, "positions", positions, "invFreq", invFreq);
        if (slots != null) {
            checkSameDevice("qkv", qkv, "slots", slots);
        }
        if (kDst.getDataType() != qkv.getDataType() || vDst.getDataType() != qkv.getDataType()) {
            throw new IllegalArgumentException("kDst/vDst dtype " + kDst.getDataType() + "/" + vDst.getDataType()
                    + " must be qkv's " + qkv.getDataType());
        }
        if (useKernels(qkv, kDst, vDst)) {
            NDArray q = qkv.getManager().create(new Shape(n, qHeads, d), qkv.getDataType(), qkv.getDevice());
            FusedKernels.ropeStore(DeviceTensor.fromNDArray(qkv), DeviceTensor.fromNDArray(positions),
                    slots == null ? null : DeviceTensor.fromNDArray(slots), DeviceTensor.fromNDArray(invFreq),
                    DeviceTensor.fromNDArray(q), DeviceTensor.fromNDArray(kDst), DeviceTensor.fromNDArray(vDst),
                    qHeads, kvHeads, attentionScaling).run();
            return q;
        }
        return ropeStoreMath(qkv, qHeads, kvHeads, d, positions, invFreq, attentionScaling, slots, kDst, vDst);
    }

    /**
     * Applies the gated activation of a packed [gate | up] projection: {@code T(T(act(gate)) * up)}.
     *
     * @param gateUp [..., 2 inter]: gate in the first half of the last axis, up in the second
     * @param activation SiLU or GELU (tanh)
     * @return [..., inter] on gateUp's manager
     */
    public static NDArray gatedActivation(NDArray gateUp, GatedActivation activation) {
        Objects.requireNonNull(gateUp, "gateUp");
        Objects.requireNonNull(activation, "activation");
        Shape s = gateUp.getShape();
        long cols = s.dimension() == 0 ? 0 : s.get(s.dimension() - 1);
        if (s.dimension() < 1 || cols % 2 != 0) {
            throw new IllegalArgumentException("gateUp must be [..., 2 x inter] with an even last axis, got " + s);
        }
        long inter = cols / 2;
        Shape outShape = s.slice(0, s.dimension() - 1).add(inter);
        if (useKernels(gateUp)) {
            NDArray out = gateUp.getManager().create(outShape, gateUp.getDataType(), gateUp.getDevice());
            FusedKernels.gatedActivation(matrix(gateUp), matrix(out), activation == GatedActivation.GELU_TANH)
                    .run();
            return out;
        }
        NDArray gate = gateUp.get(new NDIndex("..., :{}", inter));
        NDArray up = gateUp.get(new NDIndex("..., {}:", inter));
        NDArray g32 = gate.toType(DataType.FLOAT32, false);
        NDArray act = activation == GatedActivation.SILU ? g32.mul(Activation.sigmoid(g32)) : geluTanh(g32);
        NDArray out = act.toType(gateUp.getDataType(), false).mul(up);
        return out.getShape().equals(outShape) ? out : out.reshape(outShape);
    }

    // ---- the NDArray math: the semantics and the CPU path ----

    private static NDArray normMath(NDArray x, NDArray weight, float eps, NormStyle style) {
        DataType type = x.getDataType();
        NDArray x32 = x.toType(DataType.FLOAT32, false);
        NDArray normed = x32.mul(x32.square().mean(new int[] {-1}, true).add(eps).pow(-0.5f)); // [..., hidden]
        if (style == NormStyle.GEMMA) {
            return normed.mul(weight.toType(DataType.FLOAT32, false).add(1f)).toType(type, false);
        }
        return normed.toType(type, false).mul(weight);
    }

    private static NDArray ropeStoreMath(NDArray qkv, int qHeads, int kvHeads, long d, NDArray positions,
            NDArray invFreq, float attentionScaling, NDArray slots, NDArray kDst, NDArray vDst) {
        long n = qkv.getShape().get(0);
        DataType type = qkv.getDataType();
        long qCols = qHeads * d;
        long kCols = kvHeads * d;
        NDArray angles = positions.toType(DataType.FLOAT32, false).reshape(n, 1, 1)
                .mul(invFreq.reshape(1, 1, d / 2)); // [N, 1, D/2]
        NDArray cos = angles.cos().mul(attentionScaling);
        NDArray sin = angles.sin().mul(attentionScaling);
        NDArray qk = qkv.get(new NDIndex(":, :{}", qCols + kCols)).toType(DataType.FLOAT32, false)
                .reshape(n, qHeads + kvHeads, d); // [N, Hq + Hkv, D]
        NDArray x1 = qk.get(new NDIndex("..., :{}", d / 2));
        NDArray x2 = qk.get(new NDIndex("..., {}:", d / 2));
        NDArray rotated = NDArrays.concat(new NDList(x1.mul(cos).sub(x2.mul(sin)), x2.mul(cos).add(x1.mul(sin))),
                -1).toType(type, false); // [N, Hq + Hkv, D]
        NDArray q = rotated.get(new NDIndex(":, :{}", qHeads)); // [N, Hq, D]
        NDArray k = rotated.get(new NDIndex(":, {}:", qHeads)); // [N, Hkv, D]
        NDArray v = qkv.get(new NDIndex(":, {}:{}", qCols + kCols, qCols + 2 * kCols)).reshape(n, kvHeads, d);
        NDManager m = qkv.getManager();
        NDArray rows = slots == null ? m.arange(0, (int) n, 1, DataType.INT64, qkv.getDevice())
                : slots.toType(DataType.INT64, false);
        if (slots != null) {
            int[] s = slots.toIntArray();
            int kept = 0;
            for (int v0 : s) {
                kept += v0 >= 0 ? 1 : 0;
            }
            if (kept < s.length) { // negative slots store nothing
                long[] keep = new long[kept];
                long[] dst = new long[kept];
                int j = 0;
                for (int i = 0; i < s.length; i++) {
                    if (s[i] >= 0) {
                        keep[j] = i;
                        dst[j++] = s[i];
                    }
                }
                NDArray keepIdx = m.create(keep).toDevice(qkv.getDevice(), false);
                k = k.get(keepIdx);
                v = v.get(keepIdx);
                rows = m.create(dst).toDevice(qkv.getDevice(), false);
            }
        }
        if (rows.getShape().get(0) > 0) {
            kDst.set(new NDIndex("{}", rows), k);
            vDst.set(new NDIndex("{}", rows), v);
        }
        return q.getShape().equals(new Shape(n, qHeads, d)) ? q : q.reshape(n, qHeads, d);
    }

    private static NDArray geluTanh(NDArray x) {
        // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        NDArray inner = x.add(x.pow(3).mul(0.044715f)).mul((float) Math.sqrt(2 / Math.PI));
        return x.mul(0.5f).mul(inner.tanh().add(1f));
    }

    // ---- dispatch and checks ----

    private static boolean useKernels(NDArray... arrays) {
        if (!arrays[0].getDevice().isGpu()) {
            return false;
        }
        DataType type = arrays[0].getDataType();
        if (type != DataType.FLOAT16 && type != DataType.FLOAT32) {
            return false;
        }
        String reason = KernelModule.notBuiltReason(FusedKernels.MODULE);
        if (reason == null && !CudaRuntime.isAvailable()) {
            reason = CudaRuntime.unavailableReason();
        }
        if (reason != null) {
            if (!warnedNotBuilt) {
                warnedNotBuilt = true;
                logger.warn("fused transformer kernels unavailable ({}); CUDA NDArrays use the NDArray math", reason);
            }
            return false;
        }
        return true; // DeviceTensor.fromNDArray refuses non-contiguous arrays, naming the argument's shape
    }

    private static DeviceTensor matrix(NDArray a) {
        Shape s = a.getShape();
        long cols = s.get(s.dimension() - 1);
        long rows = cols == 0 ? 0 : s.size() / cols;
        DeviceTensor t = DeviceTensor.fromNDArray(a);
        return DeviceTensor.fromDevicePointer(t.getAddress(), new long[] {rows, cols},
                DeviceTensor.contiguousStrides(rows, cols), t.getDataType(), t.getDevice());
    }

    private static void checkNorm(NDArray x, NDArray delta, NDArray weight, float eps, NormStyle style) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(style, "style");
        Shape s = x.getShape();
        if (s.dimension() < 1) {
            throw new IllegalArgumentException("x must be [..., hidden], got a scalar");
        }
        long hidden = s.get(s.dimension() - 1);
        if (!weight.getShape().equals(new Shape(hidden))) {
            throw new IllegalArgumentException("weight must be [" + hidden + "] for x " + s + ", got "
                    + weight.getShape());
        }
        if (weight.getDataType() != x.getDataType()) {
            throw new IllegalArgumentException("weight dtype " + weight.getDataType() + " must be x's "
                    + x.getDataType());
        }
        if (delta != null && (!delta.getShape().equals(s) || delta.getDataType() != x.getDataType())) {
            throw new IllegalArgumentException("delta " + delta.getDataType() + " " + delta.getShape()
                    + " must match the residual " + x.getDataType() + " " + s);
        }
        if (!(eps > 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be a finite number > 0, got " + eps);
        }
        checkSameDevice("x", x, "weight", weight);
        if (delta != null) {
            checkSameDevice("x", x, "delta", delta);
        }
    }

    private static void checkIndex(String name, NDArray a, long n) {
        if (a.getDataType() != DataType.INT32 || !a.getShape().equals(new Shape(n))) {
            throw new IllegalArgumentException(name + " must be int32 [" + n + "], got " + a.getDataType() + " "
                    + a.getShape());
        }
    }

    private static void checkSameDevice(Object... namesAndArrays) {
        String firstName = (String) namesAndArrays[0];
        NDArray first = (NDArray) namesAndArrays[1];
        for (int i = 2; i < namesAndArrays.length; i += 2) {
            NDArray a = (NDArray) namesAndArrays[i + 1];
            if (!a.getDevice().equals(first.getDevice())) {
                throw new IllegalArgumentException(namesAndArrays[i] + " is on " + a.getDevice() + " but "
                        + firstName + " is on " + first.getDevice());
            }
        }
    }
}
