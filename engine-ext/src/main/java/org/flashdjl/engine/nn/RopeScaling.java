package org.flashdjl.engine.nn;

import java.util.Locale;

/**
 * RoPE frequency scaling, as Hugging Face transformers' {@code rope_type}s: none ({@code default}), {@code linear}
 * (positions divided by {@code factor}), {@code llama3} (low frequencies divided by {@code factor}, high
 * frequencies kept, a smooth blend between, by wavelength against {@code originalMaxPositions}) and {@code yarn}
 * (NTK-by-parts: a linear ramp between interpolated and extrapolated frequencies over the dimensions whose number
 * of rotations within {@code originalMaxPositions} lies between {@code betaSlow} and {@code betaFast}, plus an
 * attention factor that multiplies cos and sin).
 *
 * <p>Every formula is transformers' ({@code modeling_rope_utils}), evaluated in float64 on the host.
 */
public final class RopeScaling {

    /** The scaling rules. */
    public enum Type {
        /** Unscaled ({@code rope_type: "default"}). */
        NONE,
        /** {@code inv_freq / factor}. */
        LINEAR,
        /** Llama 3.1's wavelength-dependent rule. */
        LLAMA3,
        /** YaRN (NTK-by-parts interpolation with an attention factor). */
        YARN
    }

    private static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 1, 4, 8192, 32, 1, 1, true);

    private final Type type;
    private final double factor;
    private final double lowFreqFactor;
    private final double highFreqFactor;
    private final long originalMaxPositions;
    private final double betaFast;
    private final double betaSlow;
    private final double attentionFactor;
    private final boolean truncate;

    private RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor,
            long originalMaxPositions, double betaFast, double betaSlow, double attentionFactor, boolean truncate) {
        this.type = type;
        this.factor = factor;
        this.lowFreqFactor = lowFreqFactor;
        this.highFreqFactor = highFreqFactor;
        this.originalMaxPositions = originalMaxPositions;
        this.betaFast = betaFast;
        this.betaSlow = betaSlow;
        this.attentionFactor = attentionFactor;
        this.truncate = truncate;
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
        return new RopeScaling(Type.LINEAR, factor, 1, 4, 8192, 32, 1, 1, true);
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
        if (!(highFreqFactor > lowFreqFactor) || !(lowFreqFactor > 0) || Double.isInfinite(highFreqFactor)
                || originalMaxPositions <= 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor (finite) and"
                            + " original_max_position_embeddings > 0, got %s, %s, %d",
                    lowFreqFactor, highFreqFactor, originalMaxPositions));
        }
        return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, originalMaxPositions, 32, 1, 1,
                true);
    }

    /**
     * Returns YaRN scaling.
     *
     * @param factor the interpolation factor ({@code > 0})
     * @param originalMaxPositions the pre-training context length ({@code original_max_position_embeddings})
     * @param betaFast rotations where extrapolation ends (transformers' default 32)
     * @param betaSlow rotations where interpolation starts (transformers' default 1)
     * @param attentionFactor the factor multiplying cos and sin (see {@link #yarnAttentionFactor})
     * @param truncate whether the correction range is rounded outwards to whole dimensions (default true)
     * @return the scaling
     */
    public static RopeScaling yarn(double factor, long originalMaxPositions, double betaFast, double betaSlow,
            double attentionFactor, boolean truncate) {
        checkFactor(factor);
        if (originalMaxPositions <= 0 || !(betaFast > 0) || !(betaSlow > 0) || Double.isInfinite(betaFast)
                || Double.isInfinite(betaSlow) || !(attentionFactor > 0) || Double.isInfinite(attentionFactor)) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "yarn rope scaling needs original_max_position_embeddings > 0 and finite beta_fast, beta_slow,"
                            + " attention_factor > 0, got %d, %s, %s, %s",
                    originalMaxPositions, betaFast, betaSlow, attentionFactor));
        }
        return new RopeScaling(Type.YARN, factor, 1, 4, originalMaxPositions, betaFast, betaSlow, attentionFactor,
                truncate);
    }

    /**
     * Returns YaRN's default attention factor, as transformers derives it when {@code attention_factor} is unset:
     * {@code mscale(factor, mscale) / mscale(factor, mscaleAllDim)} when both are set and non-zero, else
     * {@code mscale(factor, 1)}, with {@code mscale(s, m) = s <= 1 ? 1 : 0.1 m ln(s) + 1}.
     *
     * @param factor the YaRN factor
     * @param mscale {@code mscale}, or 0 when unset
     * @param mscaleAllDim {@code mscale_all_dim}, or 0 when unset
     * @return the attention factor
     */
    public static double yarnAttentionFactor(double factor, double mscale, double mscaleAllDim) {
        if (mscale != 0 && mscaleAllDim != 0) {
            return mscale(factor, mscale) / mscale(factor, mscaleAllDim);
        }
        return mscale(factor, 1);
    }

    private static double mscale(double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
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

    /** @return Llama 3's and YaRN's {@code original_max_position_embeddings} */
    public long getOriginalMaxPositions() {
        return originalMaxPositions;
    }

    /** @return YaRN's {@code beta_fast} */
    public double getBetaFast() {
        return betaFast;
    }

    /** @return YaRN's {@code beta_slow} */
    public double getBetaSlow() {
        return betaSlow;
    }

    /** @return YaRN's {@code truncate} */
    public boolean isTruncate() {
        return truncate;
    }

    /** @return the factor that multiplies cos and sin (YaRN's attention factor; 1 for the other rules) */
    public double getAttentionScaling() {
        return type == Type.YARN ? attentionFactor : 1.0;
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
        if (!(theta > 0) || Double.isInfinite(theta)) {
            throw new IllegalArgumentException("rope theta must be finite and > 0, got " + theta);
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
            case YARN:
                // dims whose rotation count over the original context lies in [betaSlow, betaFast] blend linearly
                double low = correctionDim(betaFast, headDim, theta);
                double high = correctionDim(betaSlow, headDim, theta);
                if (truncate) {
                    low = Math.floor(low);
                    high = Math.ceil(high);
                }
                low = Math.max(low, 0);
                high = Math.min(high, headDim - 1);
                if (low == high) {
                    high += 0.001; // as transformers: no division by zero
                }
                for (int i = 0; i < inv.length; i++) {
                    double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
                    double extrapolation = 1 - ramp;
                    inv[i] = inv[i] / factor * (1 - extrapolation) + inv[i] * extrapolation;
                }
                break;
            default:
                break;
        }
        return inv;
    }

    // The dimension index at which the frequency makes numRotations turns over the original context.
    private double correctionDim(double numRotations, int dim, double theta) {
        return dim * Math.log(originalMaxPositions / (numRotations * 2 * Math.PI)) / (2 * Math.log(theta));
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
            case YARN:
                return "yarn(factor=" + factor + ", original=" + originalMaxPositions + ", beta_fast=" + betaFast
                        + ", beta_slow=" + betaSlow + ", attention_factor=" + attentionFactor + ", truncate="
                        + truncate + ")";
            default:
                return "none";
        }
    }
}
