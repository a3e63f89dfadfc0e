package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;

/**
 * Per-entry key padding ({@code AttentionProblem.Builder.optKeyPadding}): batch entries of different key lengths
 * right-aligned in one tensor, their front keys NaN. Each entry must equal the float64 reference over its own keys
 * alone (bottom-right aligned), so causality, windows and ALiBi follow each entry's geometry and hidden keys
 * contribute nothing; an entry whose keys are all hidden gives 0 and LSE -inf.
 */
@ExtendWith(Seeds.class)
class KeyPaddingTest {

    private static final int B = 4;
    private static final int HQ = 4;
    private static final int HKV = 2;
    private static final int LK = 37;
    private static final int D = 16;
    private static final int[] PADDING = {0, 10, LK, 30}; // full, shorter, all hidden, 7 keys left

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"none", "causal", "window", "alibi", "softcap+causal", "window-right-only",
        "scale+lse-only"})
    void eachEntryEqualsTheReferenceOverItsOwnKeys(String option) {
        for (int lq : new int[] {1, 5}) {
            long seed = Seeds.next();
            Random rnd = new Random(seed);
            Reference.Options ref = new Reference.Options();
            AttentionSpec spec = OptionSets.spec(option, HQ, ref, rnd);
            ref.scale = spec.scaleFor(D);
            float[] q = Reference.randn(rnd, B * HQ * lq * D); // [B, Hq, Lq, D]
            float[] k = Reference.randn(rnd, B * HKV * LK * D); // [B, Hkv, Lk, D]
            float[] v = Reference.randn(rnd, B * HKV * LK * D);
            for (int b = 0; b < B; b++) { // hidden keys and values: NaN
                for (int h = 0; h < HKV; h++) {
                    int base = (b * HKV + h) * LK * D;
                    Arrays.fill(k, base, base + PADDING[b] * D, Float.NaN);
                    Arrays.fill(v, base, base + PADDING[b] * D, Float.NaN);
                }
            }
            try (NDManager m = manager.newSubManager()) {
                NDArray qa = Reference.create(m, q, DataType.FLOAT32, B, HQ, lq, D);
                NDArray ka = Reference.create(m, k, DataType.FLOAT32, B, HKV, LK, D);
                NDArray va = Reference.create(m, v, DataType.FLOAT32, B, HKV, LK, D);
                AttentionProblem problem = AttentionProblem.builder(qa, ka, va, spec).optKeyPadding(PADDING).build();
                AttentionBackend[] backends = {new MathBackend(), new OnlineBackend(), new OnlineBackend(2, 7)};
                String[] labels = {"math", "online", "online 2x7 chunks"};
                for (int i = 0; i < backends.length; i++) {
                    AttentionOutput out = backends[i].forward(problem);
                    check(option + " Lq=" + lq + " " + labels[i], seed, q, k, v, lq, ref,
                            out.getOutput().toFloatArray(), out.getLse().toFloatArray());
                }
            }
        }
    }

    private static void check(String name, long seed, float[] q, float[] k, float[] v, int lq, Reference.Options ref,
            float[] out, float[] lse) {
        for (int b = 0; b < B; b++) {
            int lk = LK - PADDING[b];
            String what = name + ", entry " + b + " (" + lk + " of " + LK + " keys); seed " + seed;
            for (int h = 0; h < HQ; h++) {
                for (int i = 0; i < lq; i++) {
                    int row = (b * HQ + h) * lq + i;
                    if (lk == 0) {
                        assertEquals(Float.NEGATIVE_INFINITY, lse[row], what + ": LSE of a row without keys");
                        for (int c = 0; c < D; c++) {
                            assertEquals(0f, out[row * D + c], what + ": output of a row without keys");
                        }
                    }
                }
            }
            if (lk == 0) {
                continue;
            }
            float[] qb = Arrays.copyOfRange(q, b * HQ * lq * D, (b + 1) * HQ * lq * D);
            float[] kb = new float[HKV * lk * D];
            float[] vb = new float[HKV * lk * D];
            for (int h = 0; h < HKV; h++) { // this entry's own keys, [Hkv, lk, D]
                int from = ((b * HKV + h) * LK + PADDING[b]) * D;
                System.arraycopy(k, from, kb, h * lk * D, lk * D);
                System.arraycopy(v, from, vb, h * lk * D, lk * D);
            }
            Reference.Result r = Reference.attention(qb, kb, vb, 1, HQ, HKV, lq, lk, D, D, ref);
            double worst = 0;
            for (int i = 0; i < r.out.length; i++) {
                double e = r.out[i];
                double got = out[b * HQ * lq * D + i];
                worst = Math.max(worst, Double.isNaN(got) ? Double.POSITIVE_INFINITY : Math.abs(got - e));
            }
            for (int i = 0; i < r.lse.length; i++) {
                double e = r.lse[i];
                double got = lse[b * HQ * lq + i];
                if (e == Double.NEGATIVE_INFINITY) {
                    assertEquals(Float.NEGATIVE_INFINITY, (float) got, what + ": LSE of a row that sees nothing");
                } else {
                    worst = Math.max(worst, Double.isNaN(got) ? Double.POSITIVE_INFINITY : Math.abs(got - e));
                }
            }
            assertTrue(worst < 2e-4, what + ": max |error| vs float64 = " + worst);
        }
    }

    @Test
    void badPaddingNamesTheEntryAndTheRange() {
        try (NDManager m = manager.newSubManager()) {
            NDArray q = m.zeros(new Shape(2, 4, 1, 8));
            NDArray k = m.zeros(new Shape(2, 2, 9, 8));
            AttentionSpec spec = AttentionSpec.builder().build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionProblem.builder(q, k, k, spec).optKeyPadding(new int[] {0, 10}).build());
            assertTrue(e.getMessage().contains("keyPadding[1] = 10 is outside [0, Lk = 9]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionProblem.builder(q, k, k, spec).optKeyPadding(new int[] {0}).build());
            assertTrue(e.getMessage().contains("one per batch entry (2)"), e.getMessage());
        }
    }
}
