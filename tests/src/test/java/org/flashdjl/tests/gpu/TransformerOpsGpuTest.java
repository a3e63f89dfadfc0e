package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.TransformerReference;
import org.flashdjl.ops.transformer.TransformerOps;
import org.flashdjl.ops.transformer.TransformerOps.GatedActivation;
import org.flashdjl.ops.transformer.TransformerOps.NormStyle;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

/**
 * The fused transformer kernels through {@link TransformerOps} on CUDA NDArrays of DJL's PyTorch engine, against the
 * float64 {@link TransformerReference} on fresh seeded inputs, with NaN-poisoned destinations.
 */
@Tag("gpu")
@Tag("djl")
class TransformerOpsGpuTest {

    private static final long SEED = Long.getLong("flashdjl.test.seed", System.nanoTime());

    @BeforeEach
    void gpu() {
        DjlGpu.assumeFusedKernels(); // each test reports the skip and its reason
    }

    private static String seed(String what) {
        return what + " (seed " + SEED + ")";
    }

    private static TransformerReference.Rounding rounding(DataType type) {
        return type == DataType.FLOAT16 ? TransformerReference.HALF : TransformerReference.FLOAT;
    }

    private static float[] values(Random rnd, int n, DataType type, double scale) {
        float[] x = Reference.randn(rnd, n);
        for (int i = 0; i < n; i++) {
            x[i] *= scale;
            if (type == DataType.FLOAT16) {
                x[i] = (float) TransformerReference.roundToHalf(x[i]);
            }
        }
        return x;
    }

    private static NDArray gpu(NDManager m, float[] x, DataType type, long... shape) {
        return Reference.create(m, x, type, shape);
    }

    private static void assertClose(double[] expected, NDArray actual, DataType type, String what) {
        double[] got = Reference.toDoubles(actual);
        double maxRef = 0;
        for (double e : expected) {
            maxRef = Math.max(maxRef, Math.abs(e));
        }
        double tol = (type == DataType.FLOAT16 ? 1e-3 : 1e-5) * Math.max(1, maxRef);
        double err = Reference.maxAbsDiff(got, expected);
        assertTrue(err <= tol, seed(what + ": max |error| " + err + " > " + tol));
    }

    @ParameterizedTest
    @CsvSource({"float16, false, 1, 2048", "float16, true, 33, 2048", "float16, false, 3, 130",
        "float32, false, 5, 4096", "float32, true, 2, 7", "float16, false, 128, 64"})
    void rmsNormAndResidual(String dtype, boolean gemma, int rows, int hidden) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + rows * 17L + hidden);
        NormStyle style = gemma ? NormStyle.GEMMA : NormStyle.LLAMA;
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            float[] x = values(rnd, rows * hidden, type, 3);
            float[] d = values(rnd, rows * hidden, type, 3);
            float[] w = values(rnd, hidden, type, 1);
            NDArray weight = gpu(m, w, type, hidden);
            NDArray out = TransformerOps.rmsNorm(gpu(m, x, type, rows, hidden), weight, 1e-5f, style);
            assertEquals(Device.gpu(), out.getDevice());
            TransformerReference.Rounding r = rounding(type);
            assertClose(TransformerReference.rmsNorm(x, w, rows, hidden, 1e-5, gemma, r), out, type, "rmsNorm");
            NDArray residual = gpu(m, x, type, rows, hidden);
            NDArray normed = TransformerOps.addRmsNorm(residual, gpu(m, d, type, rows, hidden), weight, 1e-5f,
                    style);
            float[] sum = new float[x.length];
            double[] sumRef = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                sumRef[i] = r.round((double) x[i] + d[i]);
                sum[i] = (float) sumRef[i];
            }
            assertEquals(0, Reference.maxAbsDiff(Reference.toDoubles(residual), sumRef), seed("residual sum"));
            assertClose(TransformerReference.rmsNorm(sum, w, rows, hidden, 1e-5, gemma, r), normed, type,
                    "addRmsNorm");
        }
    }

    @ParameterizedTest
    @CsvSource({"float16, 32, 8, 64, true", "float16, 8, 1, 128, false", "float32, 4, 2, 16, true",
        "float16, 2, 2, 256, true"})
    void ropeStore(String dtype, int hq, int hkv, int d, boolean withSlots) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + hq * 7L + d);
        int n = 37;
        int numSlots = 64;
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            float[] qkv = values(rnd, n * (hq + 2 * hkv) * d, type, 2);
            int[] positions = new int[n];
            int[] slots = new int[n];
            for (int t = 0; t < n; t++) {
                positions[t] = rnd.nextInt(131072);
                slots[t] = t % 5 == 4 ? -1 : (t * 7) % numSlots; // distinct for t < 64, some skipped
            }
            float[] invFreq = new float[d / 2];
            for (int j = 0; j < d / 2; j++) {
                invFreq[j] = (float) Math.pow(500000, -2.0 * j / d);
            }
            NDArray kDst = m.full(new Shape(numSlots, hkv, d), Float.NaN, type);
            NDArray vDst = m.full(new Shape(numSlots, hkv, d), Float.NaN, type);
            NDArray q = TransformerOps.ropeStore(gpu(m, qkv, type, n, (hq + 2L * hkv) * d), hq, hkv,
                    m.create(positions), m.create(invFreq), 1.5f, withSlots ? m.create(slots) : null, kDst, vDst);
            double[][] ref = TransformerReference.rope(qkv, n, hq, hkv, d, positions, invFreq, 1.5);
            TransformerReference.Rounding r = rounding(type);
            for (int i = 0; i < ref[0].length; i++) {
                ref[0][i] = r.round(ref[0][i]);
            }
            assertClose(ref[0], q, type, "rotated q");
            double[] k = Reference.toDoubles(kDst);
            double[] v = Reference.toDoubles(vDst);
            boolean[] written = new boolean[numSlots];
            int row = hkv * d;
            double tol = (type == DataType.FLOAT16 ? 2e-3 : 1e-5) * 6;
            for (int t = 0; t < n; t++) {
                int slot = withSlots ? slots[t] : t;
                if (slot < 0) {
                    continue;
                }
                written[slot] = true;
                for (int i = 0; i < row; i++) {
                    assertTrue(Math.abs(k[slot * row + i] - ref[1][t * row + i]) <= tol,
                            seed("k of token " + t + " at slot " + slot));
                    assertEquals(ref[2][t * row + i], v[slot * row + i], 0, seed("v of token " + t));
                }
            }
            for (int s = 0; s < numSlots; s++) {
                for (int i = 0; !written[s] && i < row; i++) {
                    assertTrue(Double.isNaN(k[s * row + i]) && Double.isNaN(v[s * row + i]),
                            "slot " + s + " was not a destination but was written");
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"float16, false, 1, 8192", "float16, true, 17, 9216", "float32, false, 3, 100",
        "float16, false, 128, 8192"})
    void gatedActivation(String dtype, boolean gelu, int rows, int inter) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + rows * 3L + inter);
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            float[] gu = values(rnd, rows * 2 * inter, type, 3);
            NDArray out = TransformerOps.gatedActivation(gpu(m, gu, type, rows, 2L * inter),
                    gelu ? GatedActivation.GELU_TANH : GatedActivation.SILU);
            assertClose(TransformerReference.gatedAct(gu, rows, inter, gelu, rounding(type)), out, type,
                    "gated activation");
        }
    }

    @org.junit.jupiter.api.Test
    void operandsOverTwoGiB() {
        // DJL wraps data_ptr() in an int-capacity ByteBuffer: arrays over 2 GiB reach the kernels through a view
        Random rnd = new Random(SEED + 99);
        int rows = 65600;
        int inter = 8192; // gate_up [rows, 16384] fp16 = 2.15 GB
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray gateUp = m.randomNormal(0, 2, new Shape(rows, 2L * inter), DataType.FLOAT32)
                    .toType(DataType.FLOAT16, false);
            NDArray out = TransformerOps.gatedActivation(gateUp, GatedActivation.SILU);
            for (int r : new int[] {0, 1 + rnd.nextInt(rows - 2), rows - 1}) {
                float[] row = gateUp.get(r).toType(DataType.FLOAT32, false).toFloatArray();
                assertClose(TransformerReference.gatedAct(row, 1, inter, false, TransformerReference.HALF),
                        out.get(r), DataType.FLOAT16, "row " + r + " of a 2.15 GB gate_up");
            }
        }
    }
}
