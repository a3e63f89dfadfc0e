package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.cascade.MergeState;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The one LSE layout (FlashInfer's rule): the LSE has the output's shape without its last axis (bhsd [B, Hq, Lq],
 * bshd [B, Lq, Hq], varlen [totalQ, Hq]) and is fp32 whatever the input dtype (float64 inputs included), checked
 * against the float64 reference; and an output merges with its LSE as returned, with no transpose.
 */
class LseLayoutTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    static Stream<Arguments> dense() {
        List<Arguments> cases = new ArrayList<>();
        for (String backend : new String[] {"math", "online"}) {
            for (QkvLayout layout : QkvLayout.values()) {
                for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT64, DataType.FLOAT16}) {
                    cases.add(Arguments.of(backend, layout, type));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dense")
    void denseLseIsTheOutputWithoutItsLastAxis(String backend, QkvLayout layout, DataType type) {
        long seed = 1300 + backend.hashCode() * 31L + layout.ordinal() * 7L + type.ordinal();
        Random rnd = new Random(seed);
        int b = 2;
        int hq = 4;
        int hkv = 2;
        int lq = 7;
        int lk = 11;
        int d = 8;
        float[] q = Reference.randn(rnd, b * hq * lq * d); // bhsd
        float[] k = Reference.randn(rnd, b * hkv * lk * d);
        float[] v = Reference.randn(rnd, b * hkv * lk * d);
        if (type == DataType.FLOAT16) {
            q = Reference.roundToHalf(manager, q);
            k = Reference.roundToHalf(manager, k);
            v = Reference.roundToHalf(manager, v);
        }
        Reference.Options ro = new Reference.Options();
        ro.scale = 1 / Math.sqrt(d);
        ro.causal = true;
        ro.windowLeft = 4;
        ro.sinkTokens = 1;
        Reference.Result ref = Reference.attention(q, k, v, b, hq, hkv, lq, lk, d, d, ro);
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optWindowBounds(4, -1).optSinkTokens(1)
                .optLayout(layout).optReturnLse(true).build();
        try (NDManager m = manager.newSubManager()) {
            NDArray qa = input(m, q, type, layout, b, hq, lq, d);
            NDArray ka = input(m, k, type, layout, b, hkv, lk, d);
            NDArray va = input(m, v, type, layout, b, hkv, lk, d);
            AttentionOutput out = Attention.forward(qa, ka, va, spec, backend);
            Shape os = out.getOutput().getShape();
            assertEquals(os.slice(0, 3), out.getLse().getShape(), "LSE shape, seed " + seed);
            assertEquals(DataType.FLOAT32, out.getLse().getDataType(), "LSE dtype, seed " + seed);
            Shape expected = layout == QkvLayout.BHSD ? new Shape(b, hq, lq) : new Shape(b, lq, hq);
            assertEquals(expected, out.getLse().getShape(), "seed " + seed);
            double[] got = Reference.toDoubles(out.getLse());
            double[] want = layout == QkvLayout.BHSD ? ref.lse : bhsdToBshd(ref.lse, b, hq, lq);
            double err = Reference.maxAbsDiff(got, want);
            assertTrue(err <= 1e-4, backend + " " + layout + " " + type + ": LSE error " + err + "; seed " + seed);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void varlenLseIsTotalQByHeads(String backend) {
        long seed = 1400 + backend.hashCode();
        Random rnd = new Random(seed);
        int[] lq = {3, 0, 5};
        int[] lk = {4, 2, 9};
        int[] cuQ = {0, 3, 3, 8};
        int[] cuK = {0, 4, 6, 15};
        int hq = 4;
        int hkv = 1;
        int d = 8;
        float[] q = Reference.randn(rnd, cuQ[3] * hq * d); // [totalQ, Hq, D]
        float[] k = Reference.randn(rnd, cuK[3] * hkv * d);
        float[] v = Reference.randn(rnd, cuK[3] * hkv * d);
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
        try (NDManager m = manager.newSubManager()) {
            NDArray qa = m.create(q, new Shape(cuQ[3], hq, d));
            NDArray ka = m.create(k, new Shape(cuK[3], hkv, d));
            NDArray va = m.create(v, new Shape(cuK[3], hkv, d));
            AttentionOutput out = Attention.forwardVarlen(qa, ka, va, m.create(cuQ), m.create(cuK), spec, backend);
            assertEquals(new Shape(cuQ[3], hq), out.getLse().getShape(), "seed " + seed);
            assertEquals(DataType.FLOAT32, out.getLse().getDataType());
            double[] got = Reference.toDoubles(out.getLse()); // [totalQ, Hq]
            for (int s = 0; s < lq.length; s++) {
                if (lq[s] == 0) {
                    continue;
                }
                float[] qs = m.create(q, new Shape(cuQ[3], hq, d)).get(new NDIndex("{}:{}", cuQ[s], cuQ[s + 1]))
                        .transpose(1, 0, 2).duplicate().toFloatArray(); // [Hq, Lq_s, D]
                float[] ks = m.create(k, new Shape(cuK[3], hkv, d)).get(new NDIndex("{}:{}", cuK[s], cuK[s + 1]))
                        .transpose(1, 0, 2).duplicate().toFloatArray();
                float[] vs = m.create(v, new Shape(cuK[3], hkv, d)).get(new NDIndex("{}:{}", cuK[s], cuK[s + 1]))
                        .transpose(1, 0, 2).duplicate().toFloatArray();
                Reference.Options ro = new Reference.Options();
                ro.scale = 1 / Math.sqrt(d);
                ro.causal = true;
                Reference.Result ref = Reference.attention(qs, ks, vs, 1, hq, hkv, lq[s], lk[s], d, d, ro);
                for (int i = 0; i < lq[s]; i++) {
                    for (int h = 0; h < hq; h++) {
                        double g = got[(cuQ[s] + i) * hq + h];
                        double r = ref.lse[h * lq[s] + i];
                        assertTrue(Math.abs(g - r) <= 1e-4, backend + " sequence " + s + " row " + i + " head " + h
                                + ": LSE " + g + " vs float64 " + r + "; seed " + seed);
                    }
                }
            }
        }
    }

    static Stream<String> backends() {
        return Stream.of("math", "online");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void bshdOutputsMergeWithTheirLseAsReturned(String backend) {
        // Two halves of the keys attended separately (positions of the whole sequence), merged by MergeState with
        // the LSEs as the backend returned them, equal attention over all keys: no transpose anywhere.
        long seed = 1500 + backend.hashCode();
        Random rnd = new Random(seed);
        int b = 1;
        int hq = 3;
        int lq = 5;
        int lk = 12;
        int d = 8;
        float[] q = Reference.randn(rnd, b * hq * lq * d);
        float[] k = Reference.randn(rnd, b * hq * lk * d);
        float[] v = Reference.randn(rnd, b * hq * lk * d);
        Reference.Options ro = new Reference.Options();
        ro.scale = 1 / Math.sqrt(d);
        ro.causal = true;
        Reference.Result ref = Reference.attention(q, k, v, b, hq, hq, lq, lk, d, d, ro);
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optLayout(QkvLayout.BSHD).optReturnLse(true)
                .build();
        try (NDManager m = manager.newSubManager()) {
            NDArray qa = input(m, q, DataType.FLOAT32, QkvLayout.BSHD, b, hq, lq, d);
            NDArray ka = input(m, k, DataType.FLOAT32, QkvLayout.BSHD, b, hq, lk, d);
            NDArray va = input(m, v, DataType.FLOAT32, QkvLayout.BSHD, b, hq, lk, d);
            int half = lk / 2;
            AttentionOutput a = Attention.forward(AttentionProblem.builder(qa, ka.get(":, 0:{}", half),
                    va.get(":, 0:{}", half), spec).optPositions(lk - lq, 0).build(), backend);
            AttentionOutput c = Attention.forward(AttentionProblem.builder(qa, ka.get(":, {}:", half),
                    va.get(":, {}:", half), spec).optPositions(lk - lq, half).build(), backend);
            NDList merged = MergeState.mergeState(a.getOutput(), a.getLse(), c.getOutput(), c.getLse());
            double outErr = Reference.maxAbsDiff(Reference.toDoubles(merged.get(0).transpose(0, 2, 1, 3).duplicate()),
                    ref.out);
            double lseErr = Reference.maxAbsDiff(Reference.toDoubles(merged.get(1)), bhsdToBshd(ref.lse, b, hq, lq));
            assertTrue(outErr <= 1e-5, backend + ": merged output error " + outErr + "; seed " + seed);
            assertTrue(lseErr <= 1e-4, backend + ": merged LSE error " + lseErr + "; seed " + seed);
        }
    }

    private static NDArray input(NDManager m, float[] bhsd, DataType type, QkvLayout layout, int b, int h, int l,
            int d) {
        if (layout == QkvLayout.BHSD) {
            return Reference.create(m, bhsd, type, b, h, l, d);
        }
        return Reference.create(m, Reference.bhsdToBshd(bhsd, b, h, l, d), type, b, l, h, d);
    }

    // [B, H, L] -> [B, L, H]
    private static double[] bhsdToBshd(double[] x, int b, int h, int l) {
        double[] y = new double[x.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int li = 0; li < l; li++) {
                    y[(bi * l + li) * h + hi] = x[(bi * h + hi) * l + li];
                }
            }
        }
        return y;
    }
}
