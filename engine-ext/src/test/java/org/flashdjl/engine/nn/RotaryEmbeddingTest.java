package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;

/** RoPE frequencies (plain, linear, llama3, yarn) and the rotate-half rotation against hand-written formulas. */
class RotaryEmbeddingTest {

    @Test
    void llama3ScalingFollowsTheWavelengthRule() {
        int d = 128;
        double theta = 500000;
        double[] inv = RopeScaling.llama3(8, 1, 4, 8192).inverseFrequencies(d, theta);
        double[] plain = RopeScaling.none().inverseFrequencies(d, theta);
        for (int i = 0; i < d / 2; i++) {
            double f = 1 / Math.pow(theta, 2.0 * i / d);
            assertEquals(f, plain[i], 1e-15);
            double wavelen = 2 * Math.PI / f;
            double expected;
            if (wavelen < 8192 / 4.0) {
                expected = f;
            } else if (wavelen > 8192 / 1.0) {
                expected = f / 8;
            } else {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                expected = (1 - smooth) * f / 8 + smooth * f;
            }
            assertEquals(expected, inv[i], 1e-15 + 1e-12 * expected, "i=" + i);
        }
        double[] lin = RopeScaling.linear(4).inverseFrequencies(d, theta);
        assertEquals(plain[3] / 4, lin[3], 1e-18);
        assertThrows(IllegalArgumentException.class, () -> RopeScaling.llama3(8, 4, 1, 8192));
    }

    @Test
    void rotationIsRotateHalfAtEachPosition() {
        try (NDManager m = NDManager.newBaseManager()) {
            RotaryEmbedding rope = new RotaryEmbedding(8, 10000, RopeScaling.none());
            NDArray x = m.randomNormal(new Shape(1, 2, 3, 8));
            float[] in = x.toFloatArray();
            float[] out = rope.apply(x, 5).toFloatArray();
            double[] inv = rope.getInverseFrequencies();
            for (int h = 0; h < 2; h++) {
                for (int t = 0; t < 3; t++) {
                    int base = (h * 3 + t) * 8;
                    for (int i = 0; i < 4; i++) {
                        double a = (5 + t) * inv[i];
                        double x1 = in[base + i];
                        double x2 = in[base + i + 4];
                        assertEquals(x1 * Math.cos(a) - x2 * Math.sin(a), out[base + i], 1e-5);
                        assertEquals(x2 * Math.cos(a) + x1 * Math.sin(a), out[base + i + 4], 1e-5);
                    }
                }
            }
            // packed form: token t of the packed array at position positions[t]
            NDArray packed = x.get("0").transpose(1, 0, 2); // [3, 2, 8]
            float[] p = rope.applyPacked(packed, new long[] {5, 6, 7}).transpose(1, 0, 2).toFloatArray();
            for (int i = 0; i < p.length; i++) {
                assertEquals(out[i], p[i], 1e-6);
            }
        }
    }

    // transformers' YaRN, step by step: correction dims of beta_fast / beta_slow rotations over the original
    // context, rounded outwards when truncating, a linear ramp over d/2 indices between them.
    private static double[] yarnReference(int d, double theta, double factor, long original, double betaFast,
            double betaSlow, boolean truncate) {
        double low = d * Math.log(original / (betaFast * 2 * Math.PI)) / (2 * Math.log(theta));
        double high = d * Math.log(original / (betaSlow * 2 * Math.PI)) / (2 * Math.log(theta));
        if (truncate) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, d - 1);
        if (low == high) {
            high += 0.001;
        }
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            double posFreq = Math.pow(theta, 2.0 * i / d);
            double extrapolation = 1 / posFreq;
            double interpolation = 1 / (factor * posFreq);
            double extrapolationFactor = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
            inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
        }
        return inv;
    }

    @Test
    void yarnBlendsInterpolatedAndExtrapolatedFrequencies() {
        for (boolean truncate : new boolean[] {true, false}) {
            int d = 64;
            double[] want = yarnReference(d, 1e6, 4, 32768, 32, 1, truncate);
            RopeScaling s = RopeScaling.yarn(4, 32768, 32, 1, RopeScaling.yarnAttentionFactor(4, 0, 0), truncate);
            double[] got = s.inverseFrequencies(d, 1e6);
            for (int i = 0; i < d / 2; i++) {
                assertEquals(want[i], got[i], 1e-15 * want[i], "truncate=" + truncate + " i=" + i);
            }
            double[] plain = RopeScaling.none().inverseFrequencies(d, 1e6);
            assertEquals(plain[0], got[0], 1e-18); // the fastest dims are extrapolated (kept)
            assertEquals(plain[d / 2 - 1] / 4, got[d / 2 - 1], 1e-18 * plain[0]); // the slowest interpolated
        }
        // the attention factor: 0.1 ln(s) + 1, or the mscale ratio; none below factor 1
        assertEquals(0.1 * Math.log(8) + 1, RopeScaling.yarnAttentionFactor(8, 0, 0), 1e-15);
        assertEquals((0.1 * 0.707 * Math.log(40) + 1) / (0.1 * 0.707 * Math.log(40) + 1),
                RopeScaling.yarnAttentionFactor(40, 0.707, 0.707), 1e-15);
        assertEquals((0.1 * Math.log(40) + 1) / (0.1 * 0.5 * Math.log(40) + 1),
                RopeScaling.yarnAttentionFactor(40, 1, 0.5), 1e-15);
        assertEquals(1.0, RopeScaling.yarnAttentionFactor(1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> RopeScaling.yarn(4, 0, 32, 1, 1, true));
        assertThrows(IllegalArgumentException.class, () -> RopeScaling.yarn(4, 16, 32, 1, Double.NaN, true));
    }

    @Test
    void theAttentionFactorScalesCosAndSin() {
        try (NDManager m = NDManager.newBaseManager()) {
            double amp = 1.25;
            RotaryEmbedding rope = new RotaryEmbedding(8, 10000, RopeScaling.yarn(4, 16, 32, 1, amp, true));
            assertEquals(amp, rope.getAttentionScaling());
            NDArray x = m.randomNormal(new Shape(1, 1, 2, 8));
            float[] in = x.toFloatArray();
            float[] out = rope.apply(x, 0).toFloatArray();
            double[] inv = rope.getInverseFrequencies();
            for (int t = 0; t < 2; t++) {
                for (int i = 0; i < 4; i++) {
                    double a = t * inv[i];
                    double x1 = in[t * 8 + i];
                    double x2 = in[t * 8 + i + 4];
                    assertEquals(amp * (x1 * Math.cos(a) - x2 * Math.sin(a)), out[t * 8 + i], 1e-5);
                    assertEquals(amp * (x2 * Math.cos(a) + x1 * Math.sin(a)), out[t * 8 + i + 4], 1e-5);
                }
            }
        }
    }
}
