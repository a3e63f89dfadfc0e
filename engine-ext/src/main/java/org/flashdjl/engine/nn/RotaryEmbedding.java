package org.flashdjl.engine.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Rotary position embedding in Hugging Face's "rotate half" form: for a head vector {@code x = [x1, x2]}
 * (halves of {@code d/2}), {@code rope(x, p) = [x1 cos - x2 sin, x2 cos + x1 sin]} with angles
 * {@code p * invFreq[i]}, cos and sin multiplied by the scaling's attention factor (YaRN; 1 otherwise). The angle
 * is rounded to fp32 ({@code fp32(p * fp32(invFreq[i]))}) as transformers computes it and as the fused kernel of
 * {@link org.flashdjl.ops.transformer.TransformerOps#ropeStore} does, so every path rotates alike.
 */
public final class RotaryEmbedding {

    private final int headDim;
    private final double theta;
    private final RopeScaling scaling;
    private final double[] invFreq; // [headDim / 2]
    private final float[] invFreq32; // [headDim / 2], what the angles use
    private final Map<Device, NDArray> invFreqByDevice = new ConcurrentHashMap<>(); // invFreq32 per device
    private final double attentionScaling;

    /**
     * Creates the embedding.
     *
     * @param headDim the head dim (even)
     * @param theta the base ({@code rope_theta})
     * @param scaling the frequency scaling
     */
    public RotaryEmbedding(int headDim, double theta, RopeScaling scaling) {
        this.headDim = headDim;
        this.theta = theta;
        this.scaling = scaling;
        this.invFreq = scaling.inverseFrequencies(headDim, theta);
        this.invFreq32 = new float[invFreq.length];
        for (int i = 0; i < invFreq.length; i++) {
            invFreq32[i] = (float) invFreq[i];
        }
        this.attentionScaling = scaling.getAttentionScaling();
    }

    /** @return the head dim */
    public int getHeadDim() {
        return headDim;
    }

    /** @return the base */
    public double getTheta() {
        return theta;
    }

    /** @return the scaling */
    public RopeScaling getScaling() {
        return scaling;
    }

    /** @return the factor multiplying cos and sin (YaRN's attention factor, else 1) */
    public double getAttentionScaling() {
        return attentionScaling;
    }

    /** @return a copy of the inverse frequencies [headDim / 2] */
    public double[] getInverseFrequencies() {
        return invFreq.clone();
    }

    /**
     * Returns the inverse frequencies as the angles use them, on a device: fp32 [headDim / 2], the {@code invFreq} of
     * {@link org.flashdjl.ops.transformer.TransformerOps#ropeStore}. Made once per device and kept with this
     * embedding (a model's lifetime: 4 bytes per frequency), so a step never uploads them.
     *
     * @param device the device
     * @return fp32 [headDim / 2] on the device; do not close it
     */
    public NDArray inverseFrequencies(Device device) {
        return invFreqByDevice.computeIfAbsent(device, d -> {
            NDManager m = NDManager.newBaseManager(d);
            NDArray a = m.create(invFreq32);
            NDScope.unregister(a); // lives with this embedding, whatever step scope first asks for it
            return a;
        });
    }

    /**
     * Rotates heads at consecutive positions.
     *
     * @param x [B, H, T, D] in bhsd
     * @param start the position of token 0
     * @return the rotated array [B, H, T, D]
     */
    public NDArray apply(NDArray x, long start) {
        long t = x.getShape().get(2);
        long[] positions = new long[(int) t];
        for (int i = 0; i < t; i++) {
            positions[i] = start + i;
        }
        return rotate(x, tables(x.getManager(), positions, x.getDataType()));
    }

    /**
     * Rotates packed tokens at arbitrary positions.
     *
     * @param x [N, H, D] packed tokens
     * @param positions the position of each token [N]
     * @return the rotated array [N, H, D]
     */
    public NDArray applyPacked(NDArray x, long[] positions) {
        if (x.getShape().get(0) != positions.length) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries for "
                    + x.getShape().get(0) + " tokens");
        }
        NDArray[] cs = tables(x.getManager(), positions, x.getDataType());
        // [N, D/2] -> [N, 1, D/2] to broadcast over heads
        return rotate(x, new NDArray[] {cs[0].expandDims(1), cs[1].expandDims(1)});
    }

    // cos, sin [T, D/2] in x's dtype
    private NDArray[] tables(NDManager manager, long[] positions, DataType type) {
        int half = headDim / 2;
        float[] cos = new float[positions.length * half];
        float[] sin = new float[positions.length * half];
        for (int p = 0; p < positions.length; p++) {
            for (int i = 0; i < half; i++) {
                double angle = (float) (positions[p] * (double) invFreq32[i]); // fp32 angle
                cos[p * half + i] = (float) (Math.cos(angle) * attentionScaling);
                sin[p * half + i] = (float) (Math.sin(angle) * attentionScaling);
            }
        }
        Shape shape = new Shape(positions.length, half);
        NDArray c = manager.create(cos, shape);
        NDArray s = manager.create(sin, shape);
        if (type != DataType.FLOAT32) {
            c = c.toType(type, false);
            s = s.toType(type, false);
        }
        return new NDArray[] {c, s};
    }

    private NDArray rotate(NDArray x, NDArray[] cs) {
        if (x.getShape().get(x.getShape().dimension() - 1) != headDim) {
            throw new IllegalArgumentException("rotary embedding of head dim " + headDim + " got " + x.getShape());
        }
        int half = headDim / 2;
        NDArray x1 = x.get(new NDIndex("..., :{}", half));
        NDArray x2 = x.get(new NDIndex("..., {}:", half));
        NDArray cos = cs[0];
        NDArray sin = cs[1];
        NDArray r1 = x1.mul(cos).sub(x2.mul(sin));
        NDArray r2 = x2.mul(cos).add(x1.mul(sin));
        return NDArrays.concat(new NDList(r1, r2), -1);
    }
}
