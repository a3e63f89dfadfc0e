package org.flashdjl.ops.transformer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.TransformerReference;
import org.flashdjl.ops.transformer.TransformerOps.GatedActivation;
import org.flashdjl.ops.transformer.TransformerOps.NormStyle;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Random;

/** The NDArray math of {@link TransformerOps} (the CPU path) against the float64 {@link TransformerReference}. */
class TransformerOpsTest {

    private static final long SEED = Long.getLong("flashdjl.test.seed", System.nanoTime());

    private static String seed(String what) {
        return what + " (seed " + SEED + "; rerun with -Dflashdjl.test.seed=" + SEED + ")";
    }

    private static float[] values(NDManager m, Random rnd, int n, DataType type) {
        float[] x = Reference.randn(rnd, n);
        return type == DataType.FLOAT16 ? Reference.roundToHalf(m, x) : x;
    }

    private static double tolerance(DataType type, double magnitude) {
        return Reference.outputTolerance(type, 2e-5 * Math.max(1, magnitude), magnitude);
    }

    private static void assertClose(double[] expected, NDArray actual, double tol, String what) {
        double[] got = Reference.toDoubles(actual);
        double err = Reference.maxAbsDiff(got, expected);
        assertTrue(err <= tol, seed(what + ": max |error| " + err + " > " + tol));
    }

    @ParameterizedTest
    @CsvSource({"float32, false, 1, 8", "float32, true, 5, 33", "float16, false, 7, 64", "float16, true, 3, 130"})
    void rmsNormMatchesReference(String dtype, boolean gemma, int rows, int hidden) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + rows * 31L + hidden);
        try (NDManager m = NDManager.newBaseManager()) {
            float[] x = values(m, rnd, rows * hidden, type);
            float[] w = values(m, rnd, hidden, type);
            NDArray xa = Reference.create(m, x, type, rows, hidden);
            NDArray out = TransformerOps.rmsNorm(xa, Reference.create(m, w, type, hidden), 1e-5f,
                    gemma ? NormStyle.GEMMA : NormStyle.LLAMA);
            assertEquals(type, out.getDataType());
            assertEquals(new Shape(rows, hidden), out.getShape());
            TransformerReference.Rounding r = type == DataType.FLOAT16 ? TransformerReference.HALF
                    : TransformerReference.FLOAT;
            assertClose(TransformerReference.rmsNorm(x, w, rows, hidden, 1e-5, gemma, r), out,
                    tolerance(type, 4), "rmsNorm " + dtype + (gemma ? " gemma" : " llama"));
            assertTrue(Arrays.equals(x, xa.toType(DataType.FLOAT32, false).toFloatArray()), "x was modified");
        }
    }

    @ParameterizedTest
    @CsvSource({"float32, false", "float16, true"})
    void addRmsNormUpdatesTheResidualInPlace(String dtype, boolean gemma) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + 7);
        int rows = 4;
        int hidden = 48;
        try (NDManager m = NDManager.newBaseManager()) {
            float[] x = values(m, rnd, rows * hidden, type);
            float[] d = values(m, rnd, rows * hidden, type);
            float[] w = values(m, rnd, hidden, type);
            NDArray residual = Reference.create(m, x, type, rows, hidden);
            NDArray out = TransformerOps.addRmsNorm(residual, Reference.create(m, d, type, rows, hidden),
                    Reference.create(m, w, type, hidden), 1e-6f, gemma ? NormStyle.GEMMA : NormStyle.LLAMA);
            TransformerReference.Rounding r = type == DataType.FLOAT16 ? TransformerReference.HALF
                    : TransformerReference.FLOAT;
            float[] sum = new float[x.length];
            double[] sumRef = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                sumRef[i] = r.round((double) x[i] + d[i]);
                sum[i] = (float) sumRef[i];
            }
            assertClose(sumRef, residual, 0, "residual + delta (exactly rounded)");
            assertClose(TransformerReference.rmsNorm(sum, w, rows, hidden, 1e-6, gemma, r), out,
                    tolerance(type, 4), "addRmsNorm " + dtype);
        }
    }

    @ParameterizedTest
    @CsvSource({"float32, 4, 2, 16, true, 1.0", "float32, 3, 3, 8, false, 1.0", "float16, 8, 2, 32, true, 1.25",
        "float32, 2, 1, 2, true, 0.5"})
    void ropeStoreRotatesAndStores(String dtype, int hq, int hkv, int d, boolean withSlots, float scaling) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + hq * 131L + d);
        int n = 5;
        int numSlots = 12;
        try (NDManager m = NDManager.newBaseManager()) {
            float[] qkv = values(m, rnd, n * (hq + 2 * hkv) * d, type);
            int[] positions = new int[n];
            for (int t = 0; t < n; t++) {
                positions[t] = rnd.nextInt(5000);
            }
            float[] invFreq = new float[d / 2];
            for (int j = 0; j < d / 2; j++) {
                invFreq[j] = (float) Math.pow(10000, -2.0 * j / d);
            }
            int[] slots = withSlots ? new int[] {3, -1, 11, 0, 7} : null;
            NDArray kDst = m.full(new Shape(numSlots, hkv, d), Float.NaN, type);
            NDArray vDst = m.full(new Shape(numSlots, hkv, d), Float.NaN, type);
            NDArray q = TransformerOps.ropeStore(Reference.create(m, qkv, type, n, (hq + 2L * hkv) * d), hq, hkv,
                    m.create(positions), m.create(invFreq), scaling, slots == null ? null : m.create(slots), kDst,
                    vDst);
            double[][] ref = TransformerReference.rope(qkv, n, hq, hkv, d, positions, invFreq, scaling);
            double tol = tolerance(type, 4);
            assertEquals(new Shape(n, hq, d), q.getShape());
            assertClose(ref[0], q, tol, "rotated q");
            double[] k = Reference.toDoubles(kDst);
            double[] v = Reference.toDoubles(vDst);
            boolean[] written = new boolean[numSlots];
            for (int t = 0; t < n; t++) {
                int slot = slots == null ? t : slots[t];
                if (slot < 0) {
                    continue;
                }
                written[slot] = true;
                for (int i = 0; i < hkv * d; i++) {
                    double ek = ref[1][t * hkv * d + i];
                    assertTrue(Math.abs(k[slot * hkv * d + i] - ek) <= tol,
                            seed("k of token " + t + " at slot " + slot + ": " + k[slot * hkv * d + i] + " vs " + ek));
                    assertEquals(ref[2][t * hkv * d + i], v[slot * hkv * d + i], 0, seed("v of token " + t));
                }
            }
            for (int s = 0; s < numSlots; s++) {
                if (!written[s]) {
                    for (int i = 0; i < hkv * d; i++) {
                        assertTrue(Double.isNaN(k[s * hkv * d + i]) && Double.isNaN(v[s * hkv * d + i]),
                                "slot " + s + " was not a destination but was written");
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"float32, false, 3, 40", "float32, true, 2, 17", "float16, false, 6, 64", "float16, true, 1, 9"})
    void gatedActivationMatchesReference(String dtype, boolean gelu, int rows, int inter) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        Random rnd = new Random(SEED + rows * 7L + inter);
        try (NDManager m = NDManager.newBaseManager()) {
            float[] gu = values(m, rnd, rows * 2 * inter, type);
            NDArray out = TransformerOps.gatedActivation(Reference.create(m, gu, type, rows, 2L * inter),
                    gelu ? GatedActivation.GELU_TANH : GatedActivation.SILU);
            assertEquals(new Shape(rows, inter), out.getShape());
            TransformerReference.Rounding r = type == DataType.FLOAT16 ? TransformerReference.HALF
                    : TransformerReference.FLOAT;
            assertClose(TransformerReference.gatedAct(gu, rows, inter, gelu, r), out, tolerance(type, 4),
                    "gated " + (gelu ? "gelu" : "silu") + " " + dtype);
        }
    }

    @Test
    void badInputsAreRejectedWithTheirNames() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.ones(new Shape(2, 8));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TransformerOps.rmsNorm(x, m.ones(new Shape(7)), 1e-5f, NormStyle.LLAMA));
            assertTrue(e.getMessage().contains("weight must be [8]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> TransformerOps.rmsNorm(x, m.ones(new Shape(8)), 0f, NormStyle.LLAMA));
            assertTrue(e.getMessage().contains("eps"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransformerOps.addRmsNorm(x,
                    m.ones(new Shape(2, 7)), m.ones(new Shape(8)), 1e-5f, NormStyle.LLAMA));
            assertTrue(e.getMessage().contains("delta"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransformerOps.gatedActivation(
                    m.ones(new Shape(2, 7)), GatedActivation.SILU));
            assertTrue(e.getMessage().contains("even"), e.getMessage());
            NDArray kv = m.zeros(new Shape(4, 1, 4));
            NDArray inv = m.ones(new Shape(2));
            e = assertThrows(IllegalArgumentException.class, () -> TransformerOps.ropeStore(m.ones(new Shape(2, 15)),
                    2, 1, m.create(new int[] {0, 1}), inv, 1f, null, kv, m.zeros(new Shape(4, 1, 4))));
            assertTrue(e.getMessage().contains("qkv must be"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransformerOps.ropeStore(m.ones(new Shape(2, 16)),
                    2, 1, m.create(new long[] {0, 1}), inv, 1f, null, kv, m.zeros(new Shape(4, 1, 4))));
            assertTrue(e.getMessage().contains("positions must be int32"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransformerOps.ropeStore(m.ones(new Shape(2, 16)),
                    2, 1, m.create(new int[] {0, 1}), inv, 1f, m.create(new int[] {0}), kv,
                    m.zeros(new Shape(4, 1, 4))));
            assertTrue(e.getMessage().contains("slots must be int32 [2]"), e.getMessage());
            assertTrue(Arrays.equals(new float[16], kv.toFloatArray()), "a rejected call wrote kDst");
        }
    }
}
