package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;

/** RoPE frequencies (plain, linear, llama3) and the rotate-half rotation against hand-written formulas. */
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
}
