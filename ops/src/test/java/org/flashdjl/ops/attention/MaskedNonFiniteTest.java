package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttention;
import org.flashdjl.ops.testing.Seeds;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * A key the mask hides contributes exactly nothing, whatever its bits: with NaN or infinite keys or values in
 * hidden positions, every row that cannot see them gives bit for bit the result of the same call with those
 * entries zeroed, in every NDArray path (math, online with its default and with 2 x 2 chunks, varlen, the gather
 * paged backend); a row that does see a NaN key or a non-finite value is non-finite. 6 queries over 6 keys, 2
 * query heads over 1 kv head, head dim 4.
 */
class MaskedNonFiniteTest {

    static final int L = 6;
    static final int HQ = 2;
    static final int D = 4;

    static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** Where the poison goes and which query rows see it. */
    record Case(String name, AttentionSpec spec, int key, boolean inValue, float poison, boolean[] sees) {
        @Override
        public String toString() {
            return name + ", " + (inValue ? "V" : "K") + "[" + key + "] = " + poison;
        }
    }

    static Stream<Arguments> cases() {
        AttentionSpec causal = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
        AttentionSpec window = AttentionSpec.builder().optCausal(true).optWindowBounds(1, -1).optReturnLse(true).build();
        AttentionSpec softcap = causal.toBuilder().optSoftcap(5f).optAlibiSlopes(new float[] {0.5f, 0.25f})
                .build();
        boolean[] onlyLast = {false, false, false, false, false, true}; // causal, key 5
        boolean[] firstTwo = {true, true, false, false, false, false}; // window (1, -1), key 0
        List<Arguments> out = new ArrayList<>();
        for (float poison : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            for (boolean inValue : new boolean[] {false, true}) {
                out.add(Arguments.of(new Case("causal", causal, 5, inValue, poison, onlyLast)));
                out.add(Arguments.of(new Case("window 1 left", window, 0, inValue, poison, firstTwo)));
                out.add(Arguments.of(new Case("causal + softcap + alibi", softcap, 5, inValue, poison, onlyLast)));
            }
        }
        return out.stream();
    }

    /** One way to run a call: q, k, v bhsd [1, H, 6, 4]; returns output [1, Hq, 6, 4] and LSE [1, Hq, 6]. */
    interface Path {
        AttentionOutput run(NDArray q, NDArray k, NDArray v, AttentionSpec spec);
    }

    static List<Object[]> paths() {
        List<Object[]> p = new ArrayList<>();
        p.add(new Object[] {"math", (Path) (q, k, v, s) -> Attention.forward(q, k, v, s, "math")});
        p.add(new Object[] {"online", (Path) (q, k, v, s) -> Attention.forward(q, k, v, s, "online")});
        p.add(new Object[] {"online 2x2", (Path) (q, k, v, s) -> new OnlineBackend(2, 2).forward(
                AttentionProblem.builder(q, k, v, s).build())});
        p.add(new Object[] {"varlen", (Path) MaskedNonFiniteTest::varlen});
        p.add(new Object[] {"gather paged", (Path) MaskedNonFiniteTest::paged});
        return p;
    }

    // The same call through the varlen entry (one packed sequence; online splits it into a dense call).
    static AttentionOutput varlen(NDArray q, NDArray k, NDArray v, AttentionSpec spec) {
        NDManager m = q.getManager();
        NDArray qp = packed(q);
        NDArray kp = packed(k);
        NDArray vp = packed(v);
        AttentionOutput o = Attention.forwardVarlen(qp, kp, vp, m.create(new int[] {0, L}), m.create(new int[] {0, L}),
                spec, "online");
        return new AttentionOutput(o.getOutput().reshape(1, L, HQ, D).transpose(0, 2, 1, 3),
                o.getLse().transpose(1, 0).reshape(1, HQ, L)); // LSE [totalQ, Hq] -> [1, Hq, L]
    }

    // The same call from a page pool of page size 4 (two pages, the second half full).
    static AttentionOutput paged(NDArray q, NDArray k, NDArray v, AttentionSpec spec) {
        NDManager m = q.getManager();
        NDArray kPages = m.zeros(new Shape(8, 1, D));
        kPages.set(new ai.djl.ndarray.index.NDIndex("0:6"), packed(k));
        NDArray vPages = m.zeros(new Shape(8, 1, D));
        vPages.set(new ai.djl.ndarray.index.NDIndex("0:6"), packed(v));
        PageTable table = PageTable.fromCsr(4, new int[] {0, 2}, new int[] {0, 1}, new int[] {2}, 2);
        AttentionOutput o = PagedAttention.prefill(packed(q), new int[] {0, L}, kPages.reshape(2, 4, 1, D),
                vPages.reshape(2, 4, 1, D), table, spec, "gather");
        return new AttentionOutput(o.getOutput().reshape(1, L, HQ, D).transpose(0, 2, 1, 3),
                o.getLse().transpose(1, 0).reshape(1, HQ, L));
    }

    // bhsd [1, H, L, D] -> packed [L, H, D]
    static NDArray packed(NDArray x) {
        return x.get(new ai.djl.ndarray.index.NDIndex("0")).transpose(1, 0, 2).duplicate();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void hiddenNonFiniteEntriesContributeNothing(Case c) {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        try (NDManager m = manager.newSubManager()) {
            float[] q = randn(rnd, HQ * L * D);
            float[] k = randn(rnd, L * D);
            float[] v = randn(rnd, L * D);
            float[] kBad = k.clone();
            float[] vBad = v.clone();
            float[] kZero = k.clone();
            float[] vZero = v.clone();
            for (int j = 0; j < D; j++) {
                (c.inValue() ? vBad : kBad)[c.key() * D + j] = c.poison();
                (c.inValue() ? vZero : kZero)[c.key() * D + j] = 0f;
            }
            NDArray qa = m.create(q, new Shape(1, HQ, L, D));
            for (Object[] p : paths()) {
                String where = p[0] + ", " + c + " (seed " + seed + ")";
                Path path = (Path) p[1];
                AttentionOutput bad = path.run(qa, m.create(kBad, new Shape(1, 1, L, D)),
                        m.create(vBad, new Shape(1, 1, L, D)), c.spec());
                AttentionOutput zero = path.run(qa, m.create(kZero, new Shape(1, 1, L, D)),
                        m.create(vZero, new Shape(1, 1, L, D)), c.spec());
                float[] ob = bad.getOutput().toFloatArray(); // [1, Hq, L, D]
                float[] oz = zero.getOutput().toFloatArray();
                float[] lb = bad.getLse().toFloatArray(); // [1, Hq, L]
                float[] lz = zero.getLse().toFloatArray();
                for (int h = 0; h < HQ; h++) {
                    for (int i = 0; i < L; i++) {
                        int row = (h * L + i) * D;
                        float[] gotRow = java.util.Arrays.copyOfRange(ob, row, row + D);
                        // an infinite key gives a score of +inf, -inf (weight 0: a finite row) or NaN, and softcap
                        // bounds it: only a visible NaN key or non-finite value must poison the row
                        boolean poisons = c.inValue() || Float.isNaN(c.poison());
                        if (c.sees()[i] && poisons) {
                            for (float x : gotRow) {
                                assertTrue(!Float.isFinite(x), where + ": head " + h + " row " + i
                                        + " sees the poison, so its output is non-finite: "
                                        + java.util.Arrays.toString(gotRow));
                            }
                        } else if (!c.sees()[i]) {
                            assertArrayEquals(java.util.Arrays.copyOfRange(oz, row, row + D), gotRow, where
                                    + ": head " + h + " row " + i + " cannot see the poisoned key");
                            assertEquals(lz[h * L + i], lb[h * L + i], where + ": LSE of head " + h + " row " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void varlenWithZeroQueriesReturnsLiveArrays() {
        try (NDManager m = manager.newSubManager()) {
            NDArray q = m.zeros(new Shape(0, HQ, D));
            NDArray k = m.ones(new Shape(3, 1, D));
            AttentionSpec spec = AttentionSpec.builder().optReturnLse(true).build();
            AttentionOutput o = Attention.forwardVarlen(q, k, k, m.create(new int[] {0, 0, 0}),
                    m.create(new int[] {0, 1, 3}), spec, "online");
            assertEquals(new Shape(0, HQ, D), o.getOutput().getShape());
            assertEquals(new Shape(0, HQ), o.getLse().getShape()); // [totalQ, Hq]
            assertEquals(0, o.getOutput().toFloatArray().length, "the output can be read: it was not released");
            assertEquals(0, o.getLse().toFloatArray().length);
        }
    }

    static float[] randn(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
