package org.flashdjl.ops.testing;

/**
 * Float64 references of the fused transformer operators in plain Java loops, written from the operators' documented
 * semantics and independent of DJL math and of the kernels. Rounding to the activation dtype between steps is
 * passed in as a function, so one reference serves fp32 (identity) and fp16 ({@link #HALF}).
 */
public final class TransformerReference {

    /** Rounds a value to the activation dtype. */
    @FunctionalInterface
    public interface Rounding {
        /**
         * Rounds.
         *
         * @param x the value
         * @return x as the dtype holds it
         */
        double round(double x);
    }

    /** fp32: round to float. */
    public static final Rounding FLOAT = x -> (float) x;

    /** fp16: round to the nearest half, ties to even (overflow to infinity). */
    public static final Rounding HALF = TransformerReference::roundToHalf;

    private TransformerReference() {}

    /**
     * Rounds to the nearest IEEE half-precision value (ties to even; beyond 65504 to infinity).
     *
     * @param x the value
     * @return the half value, as a double
     */
    public static double roundToHalf(double x) {
        if (Double.isNaN(x) || Double.isInfinite(x) || x == 0) {
            return x;
        }
        int e = Math.max(Math.getExponent(x), -14); // below 2^-14: subnormal halves, spacing 2^-24
        double ulp = Math.scalb(1.0, e - 10);
        double r = Math.rint(x / ulp) * ulp;
        return Math.abs(r) > 65504 ? Math.copySign(Double.POSITIVE_INFINITY, x) : r;
    }

    /**
     * RMSNorm of rows.
     *
     * @param x [rows, hidden]
     * @param w [hidden]
     * @param rows rows
     * @param hidden hidden
     * @param eps epsilon
     * @param gemma the (1 + w) style
     * @param t the activation rounding
     * @return [rows, hidden] in float64 (rounded to the dtype at the end)
     */
    public static double[] rmsNorm(float[] x, float[] w, int rows, int hidden, double eps, boolean gemma,
            Rounding t) {
        double[] out = new double[rows * hidden];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < hidden; i++) {
                double v = x[r * hidden + i];
                ss += v * v;
            }
            double inv = 1 / Math.sqrt(ss / hidden + eps);
            for (int i = 0; i < hidden; i++) {
                double v = x[r * hidden + i] * inv;
                out[r * hidden + i] = gemma ? t.round(v * (1 + w[i])) : t.round(t.round(v) * w[i]);
            }
        }
        return out;
    }

    /**
     * Rotary embedding of the q and k heads of a packed projection, values passed through.
     *
     * @param qkv [n, (hq + 2 hkv) * d]
     * @param n tokens
     * @param hq query heads
     * @param hkv key/value heads
     * @param d head dim
     * @param positions [n]
     * @param invFreq [d / 2]
     * @param scaling the factor on cos and sin
     * @return {q [n, hq, d], k [n, hkv, d], v [n, hkv, d]} in float64, unrounded
     */
    public static double[][] rope(float[] qkv, int n, int hq, int hkv, int d, int[] positions, float[] invFreq,
            double scaling) {
        int width = (hq + 2 * hkv) * d;
        int half = d / 2;
        double[] q = new double[n * hq * d];
        double[] k = new double[n * hkv * d];
        double[] v = new double[n * hkv * d];
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < hq + hkv; h++) {
                double[] dst = h < hq ? q : k;
                int base = (h < hq ? t * hq + h : t * hkv + h - hq) * d;
                for (int j = 0; j < half; j++) {
                    double angle = (float) (positions[t] * (double) invFreq[j]); // fp32 angle, as documented
                    double c = Math.cos(angle) * scaling;
                    double s = Math.sin(angle) * scaling;
                    double x1 = qkv[t * width + h * d + j];
                    double x2 = qkv[t * width + h * d + j + half];
                    dst[base + j] = x1 * c - x2 * s;
                    dst[base + j + half] = x2 * c + x1 * s;
                }
            }
            for (int i = 0; i < hkv * d; i++) {
                v[t * hkv * d + i] = qkv[t * width + (hq + hkv) * d + i];
            }
        }
        return new double[][] {q, k, v};
    }

    /**
     * Gated activation of [gate | up] rows.
     *
     * @param gateUp [rows, 2 inter]
     * @param rows rows
     * @param inter inter
     * @param gelu GELU (tanh) instead of SiLU
     * @param t the activation rounding
     * @return [rows, inter]
     */
    public static double[] gatedAct(float[] gateUp, int rows, int inter, boolean gelu, Rounding t) {
        double[] out = new double[rows * inter];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < inter; c++) {
                double g = gateUp[r * 2 * inter + c];
                double u = gateUp[r * 2 * inter + inter + c];
                double a = gelu ? 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)))
                        : g / (1 + Math.exp(-g));
                out[r * inter + c] = t.round(t.round(a) * u);
            }
        }
        return out;
    }
}
