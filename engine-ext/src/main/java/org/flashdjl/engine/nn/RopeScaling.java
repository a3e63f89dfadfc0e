package org.flashdjl.engine.nn;

import java.util.Locale;

/**
 * RoPE frequency scaling, as Hugging Face's {@code rope_scaling}: none, {@code linear} (positions divided by
 * {@code factor}) or {@code llama3} (low frequencies divided by {@code factor}, high frequencies kept, a smooth
 * blend between, by wavelength against {@code originalMaxPositions}).
 */
public final class RopeScaling {

    /** The scaling rules. */
    public enum Type {
        /** Unscaled. */
        NONE,
        /** {@code inv_freq / factor}. */
        LINEAR,
        /** Llama 3.1's wavelength-dependent rule. */
        LLAMA3
    }

    private static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 1, 4, 8192);

    private final Type type;
    private final double factor;
    private final double lowFreqFactor;
    private final double highFreqFactor;
    private final long originalMaxPositions;

    private RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor,
            long originalMaxPositions) {
        this.type = type;
        this.factor = factor;
        this.lowFreqFactor = lowFreqFactor;
        this.highFreqFactor = highFreqFactor;
        this.originalMaxPositions = originalMaxPositions;
    }

    /** @return no scaling */
    public static RopeScaling none() {
        return NONE;
    }

    /**
     * Returns linear scaling.
     *
     * @param factor the position divisor, {@code > 0}
     * @return the scaling
     */
    public static RopeScaling linear(double factor) {
        checkFactor(factor);
        return new RopeScaling(Type.LINEAR, factor, 1, 4, 8192);
    }

    /**
     * Returns Llama 3 scaling.
     *
     * @param factor the low-frequency divisor
     * @param lowFreqFactor Hugging Face's {@code low_freq_factor}
     * @param highFreqFactor Hugging Face's {@code high_freq_factor} ({@code > lowFreqFactor})
     * @param originalMaxPositions {@code original_max_position_embeddings}
     * @return the scaling
     */
    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor,
            long originalMaxPositions) {
        checkFactor(factor);
        if (!(highFreqFactor > lowFreqFactor) || !(lowFreqFactor > 0) || originalMaxPositions <= 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor and"
                            + " original_max_position_embeddings > 0, got %s, %s, %d",
                    lowFreqFactor, highFreqFactor, originalMaxPositions));
        }
        return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
    }

    private static void checkFactor(double factor) {
        if (!(factor > 0) || Double.isInfinite(factor)) {
            throw new IllegalArgumentException("rope scaling factor must be finite and > 0, got " + factor);
        }
    }

    /** @return the rule */
    public Type getType() {
        return type;
    }

    /** @return the factor */
    public double getFactor() {
        return factor;
    }

    /** @return Llama 3's {@code low_freq_factor} */
    public double getLowFreqFactor() {
        return lowFreqFactor;
    }

    /** @return Llama 3's {@code high_freq_factor} */
    public double getHighFreqFactor() {
        return highFreqFactor;
    }

    /** @return Llama 3's {@code original_max_position_embeddings} */
    public long getOriginalMaxPositions() {
        return originalMaxPositions;
    }

    /**
     * Returns the inverse frequencies of a head dim: {@code theta^(-2i/d)} for {@code i < d/2}, scaled.
     *
     * @param headDim the (even) rotary dim
     * @param theta the base
     * @return inverse frequencies [headDim / 2]
     */
    public double[] inverseFrequencies(int headDim, double theta) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("rotary head dim must be even and > 0, got " + headDim);
        }
        if (!(theta > 0)) {
            throw new IllegalArgumentException("rope theta must be > 0, got " + theta);
        }
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
        }
        switch (type) {
            case LINEAR:
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= factor;
                }
                break;
            case LLAMA3:
                double lowWavelen = originalMaxPositions / lowFreqFactor;
                double highWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowWavelen) {
                        inv[i] /= factor;
                    } else if (wavelen >= highWavelen) {
                        double smooth = (originalMaxPositions / wavelen - lowFreqFactor)
                                / (highFreqFactor - lowFreqFactor);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }
                }
                break;
            default:
                break;
        }
        return inv;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        switch (type) {
            case LINEAR:
                return "linear(factor=" + factor + ")";
            case LLAMA3:
                return "llama3(factor=" + factor + ", low=" + lowFreqFactor + ", high=" + highFreqFactor
                        + ", original=" + originalMaxPositions + ")";
            default:
                return "none";
        }
    }
}
