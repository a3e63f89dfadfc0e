package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

/** Varlen batches against per-sequence references, and the online backend against math on larger shapes. */
@ExtendWith(Seeds.class)
class VarlenAndOnlineTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    @ParameterizedTest(name = "backend {0}")
    @ValueSource(strings = {"math", "online", "auto"})
    void varlenMatchesReferencePerSequence(String backend) {
        Random rnd = new Random(Seeds.next());
        int hq = 8;
        int hkv = 2;
        int d = 32;
        int[] lq = {17, 0, 113, 5};
        int[] lk = {40, 9, 113, 0};
        int[] cuQ = new int[lq.length + 1];
        int[] cuK = new int[lk.length + 1];
        for (int i = 0; i < lq.length; i++) {
            cuQ[i + 1] = cuQ[i] + lq[i];
            cuK[i + 1] = cuK[i] + lk[i];
        }
        float[] q = Reference.randn(rnd, cuQ[lq.length] * hq * d); // packed [totalQ, Hq, D]
        float[] k = Reference.randn(rnd, cuK[lk.length] * hkv * d);
        float[] v = Reference.randn(rnd, cuK[lk.length] * hkv * d);
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optWindowBounds(20, -1).optSinkTokens(2)
                .optReturnLse(true).build();
        try (NDManager m = manager.newSubManager()) {
            NDArray qa = m.create(q, new Shape(cuQ[lq.length], hq, d));
            NDArray ka = m.create(k, new Shape(cuK[lk.length], hkv, d));
            NDArray va = m.create(v, new Shape(cuK[lk.length], hkv, d));
            AttentionOutput out = Attention.forwardVarlen(qa, ka, va, m.create(cuQ), m.create(cuK), spec,
                    backend);
            assertEquals(new Shape(cuQ[lq.length], hq, d), out.getOutput().getShape());
            assertEquals(new Shape(cuQ[lq.length], hq), out.getLse().getShape()); // the output without D
            for (int b = 0; b < lq.length; b++) {
                if (lq[b] == 0) {
                    continue;
                }
                // The reference wants bhsd: slice this sequence and transpose [L, H, D] -> [1, H, L, D].
                float[] qb = m.create(q, new Shape(cuQ[lq.length], hq, d)).get(new NDIndex("{}:{}", cuQ[b],
                        cuQ[b + 1])).transpose(1, 0, 2).duplicate().toFloatArray();
                float[] kb = slice(m, k, cuK, b, hkv, d);
                float[] vb = slice(m, v, cuK, b, hkv, d);
                Reference.Options ro = new Reference.Options();
                ro.scale = 1 / Math.sqrt(d);
                ro.causal = true;
                ro.windowLeft = 20;
                ro.sinkTokens = 2;
                Reference.Result ref = Reference.attention(qb, kb, vb, 1, hq, hkv, lq[b], lk[b], d, d, ro);
                NDArray got = out.getOutput().get(new NDIndex("{}:{}", cuQ[b], cuQ[b + 1])).transpose(1, 0, 2);
                double err = Reference.maxAbsDiff(Reference.toDoubles(got.duplicate()), ref.out);
                assertTrue(err < 2e-5, "sequence " + b + " output error " + err);
                NDArray lse = out.getLse().get(new NDIndex("{}:{}", cuQ[b], cuQ[b + 1])).transpose(1, 0); // [H, L]
                double lseErr = Reference.maxAbsDiff(Reference.toDoubles(lse.duplicate()), ref.lse);
                assertTrue(lseErr < 1e-4, "sequence " + b + " LSE error " + lseErr);
            }
        }
    }

    private static float[] slice(NDManager m, float[] packed, int[] cu, int b, int heads, int d) {
        return m.create(packed, new Shape(cu[cu.length - 1], heads, d)).get(new NDIndex("{}:{}", cu[b], cu[b + 1]))
                .transpose(1, 0, 2).duplicate().toFloatArray();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"plain", "causal", "window+sinks", "alibi+softcap", "bshd-causal-fp16"})
    void onlineMatchesMathOnLargerShapes(String option) {
        Random rnd = new Random(Seeds.next());
        int b = 2;
        int hq = 8;
        int hkv = 2;
        int d = 64;
        int lq = 1000;
        int lk = 1300;
        AttentionSpec.Builder sb = AttentionSpec.builder().optReturnLse(true);
        switch (option) {
            case "causal":
                sb.optCausal(true);
                break;
            case "window+sinks":
                sb.optCausal(true).optWindowBounds(300, -1).optSinkTokens(4);
                break;
            case "alibi+softcap":
                float[] slopes = new float[hq];
                for (int h = 0; h < hq; h++) {
                    slopes[h] = 1f / (1 << (h + 1));
                }
                sb.optAlibiSlopes(slopes).optSoftcap(20f);
                break;
            case "bshd-causal-fp16":
                sb.optCausal(true).optLayout(QkvLayout.BSHD);
                break;
            default:
                break;
        }
        AttentionSpec spec = sb.build();
        DataType type = option.endsWith("fp16") ? DataType.FLOAT16 : DataType.FLOAT32;
        boolean bshd = spec.getLayout() == QkvLayout.BSHD;
        try (NDManager m = manager.newSubManager()) {
            NDArray q = Reference.create(m, Reference.randn(rnd, b * hq * lq * d), type,
                    bshd ? new long[] {b, lq, hq, d} : new long[] {b, hq, lq, d});
            NDArray k = Reference.create(m, Reference.randn(rnd, b * hkv * lk * d), type,
                    bshd ? new long[] {b, lk, hkv, d} : new long[] {b, hkv, lk, d});
            NDArray v = Reference.create(m, Reference.randn(rnd, b * hkv * lk * d), type,
                    bshd ? new long[] {b, lk, hkv, d} : new long[] {b, hkv, lk, d});
            AttentionOutput math = Attention.forward(q, k, v, spec, "math");
            AttentionOutput online = new OnlineBackend(256, 384).forward(
                    AttentionProblem.builder(q, k, v, spec).build());
            double[] mathOut = Reference.toDoubles(math.getOutput());
            double err = Reference.maxAbsDiff(Reference.toDoubles(online.getOutput()), mathOut);
            double tol = Reference.outputTolerance(type, 1e-5, Reference.maxAbs(mathOut));
            assertTrue(err <= tol, "online vs math output " + err);
            double lseErr = Reference.maxAbsDiff(Reference.toDoubles(online.getLse()),
                    Reference.toDoubles(math.getLse()));
            assertTrue(lseErr <= 1e-4, "online vs math LSE " + lseErr);
        }
    }

    @Test
    void rowsThatSeeNoKeyGiveZeroAndNegativeInfinity() {
        // Causal with Lq > Lk: the first Lq - Lk rows sit before every key.
        try (NDManager m = manager.newSubManager()) {
            Random rnd = new Random(Seeds.next());
            NDArray q = m.create(Reference.randn(rnd, 10 * 8), new Shape(1, 1, 10, 8));
            NDArray k = m.create(Reference.randn(rnd, 4 * 8), new Shape(1, 1, 4, 8));
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
            for (String backend : new String[] {"math", "online"}) {
                AttentionOutput out = Attention.forward(q, k, k, spec, backend);
                float[] o = out.getOutput().toFloatArray();
                float[] lse = out.getLse().toFloatArray();
                for (int i = 0; i < 10; i++) {
                    boolean empty = i < 6;
                    assertEquals(empty, lse[i] == Float.NEGATIVE_INFINITY, backend + " row " + i + " lse " + lse[i]);
                    for (int x = 0; x < 8; x++) {
                        assertTrue(Float.isFinite(o[i * 8 + x]), backend + " NaN/inf output");
                        if (empty) {
                            assertEquals(0f, o[i * 8 + x], backend + " empty row must be 0");
                        }
                    }
                }
            }
        }
    }
}
