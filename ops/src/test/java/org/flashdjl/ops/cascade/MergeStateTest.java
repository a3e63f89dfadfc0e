package org.flashdjl.ops.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

/** Properties of mergeState, mergeStateInPlace and mergeStates. */
@ExtendWith(Seeds.class)
class MergeStateTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    @Test
    void mergingAStateWithItselfAddsLn2() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            NDArray v = m.create(Reference.randn(rnd, 5 * 3 * 16), new Shape(5, 3, 16));
            NDArray s = m.create(Reference.randn(rnd, 15), new Shape(5, 3));
            NDList r = MergeState.mergeState(v, s, v, s);
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(r.get(0)), Reference.toDoubles(v)) < 1e-6);
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(r.get(1)),
                    Reference.toDoubles(s.add((float) Math.log(2)))) < 1e-6);
        }
    }

    @ParameterizedTest(name = "causal={0}")
    @ValueSource(booleans = {false, true})
    void mergeOfTwoKeyHalvesEqualsAttentionOverAllKeys(boolean causal) {
        Random rnd = new Random(Seeds.next());
        int lq = 37;
        int lk = 91;
        int split = 40;
        try (NDManager m = manager.newSubManager()) {
            NDArray q = m.create(Reference.randn(rnd, 2 * 4 * lq * 32), new Shape(2, 4, lq, 32));
            NDArray k = m.create(Reference.randn(rnd, 2 * 2 * lk * 32), new Shape(2, 2, lk, 32));
            NDArray v = m.create(Reference.randn(rnd, 2 * 2 * lk * 32), new Shape(2, 2, lk, 32));
            float[] slopes = {0.5f, 0.25f, 0.125f, 0.0625f};
            AttentionSpec spec = AttentionSpec.builder().optCausal(causal).optAlibiSlopes(slopes)
                    .optReturnLse(true).build();
            AttentionOutput whole = Attention.forward(q, k, v, spec, "math");
            // Both halves keep the whole call's positions: queries at Lk - Lq + i, keys at 0 and split.
            AttentionOutput a = Attention.forward(AttentionProblem.builder(q, k.get(":, :, :{}", split),
                    v.get(":, :, :{}", split), spec).optPositions(lk - lq, 0).build(), "math");
            AttentionOutput b = Attention.forward(AttentionProblem.builder(q, k.get(":, :, {}:", split),
                    v.get(":, :, {}:", split), spec).optPositions(lk - lq, split).build(), "online");
            NDList merged = MergeState.mergeState(a.getOutput(), a.getLse(), b.getOutput(), b.getLse());
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(merged.get(0)),
                    Reference.toDoubles(whole.getOutput())) < 1e-5);
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(merged.get(1)),
                    Reference.toDoubles(whole.getLse())) < 1e-5);
        }
    }

    @Test
    void infinities() {
        try (NDManager m = manager.newSubManager()) {
            float inf = Float.NEGATIVE_INFINITY;
            NDArray vA = m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(3, 2));
            NDArray vB = m.create(new float[] {7, 8, 9, 10, 11, 12}, new Shape(3, 2));
            NDArray sA = m.create(new float[] {inf, inf, 0.5f});
            NDArray sB = m.create(new float[] {inf, 1.5f, inf});
            NDList r = MergeState.mergeState(vA, sA, vB, sB);
            assertEquals(java.util.Arrays.toString(new float[] {0, 0, 9, 10, 5, 6}),
                    java.util.Arrays.toString(r.get(0).toFloatArray()));
            assertEquals(java.util.Arrays.toString(new float[] {inf, 1.5f, 0.5f}),
                    java.util.Arrays.toString(r.get(1).toFloatArray()));
        }
    }

    @Test
    void inPlaceKeepsBuffersAndMatchesOutOfPlace() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT16}) {
                NDArray v = Reference.create(m, Reference.randn(rnd, 6 * 4 * 8), type, 6, 4, 8);
                NDArray s = m.create(Reference.randn(rnd, 24), new Shape(6, 4));
                NDArray vo = Reference.create(m, Reference.randn(rnd, 6 * 4 * 8), type, 6, 4, 8);
                NDArray so = m.create(Reference.randn(rnd, 24), new Shape(6, 4));
                so.set(new ai.djl.ndarray.index.NDIndex("0"), Float.NEGATIVE_INFINITY);
                NDList expected = MergeState.mergeState(v, s, vo, so);
                NDArray vBefore = v;
                String uid = v.getUid();
                MergeState.mergeStateInPlace(v, s, vo, so);
                assertSame(vBefore, v);
                assertEquals(uid, v.getUid(), "in-place merge keeps the native buffer");
                assertEquals(type, v.getDataType());
                assertTrue(Reference.maxAbsDiff(Reference.toDoubles(v), Reference.toDoubles(expected.get(0))) < 1e-6);
                assertTrue(Reference.maxAbsDiff(Reference.toDoubles(s), Reference.toDoubles(expected.get(1))) < 1e-6);
            }
        }
    }

    @Test
    void mergeStatesEqualsPairwiseMerges() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            int n = 5;
            NDArray v = m.create(Reference.randn(rnd, 7 * n * 3 * 16), new Shape(7, n, 3, 16));
            NDArray s = m.create(Reference.randn(rnd, 7 * n * 3), new Shape(7, n, 3));
            s.set(new ai.djl.ndarray.index.NDIndex("0, :, 0"), Float.NEGATIVE_INFINITY); // a row of all -inf
            s.set(new ai.djl.ndarray.index.NDIndex("1, 2, :"), Float.NEGATIVE_INFINITY);
            NDList all = MergeState.mergeStates(v, s);
            NDArray acc = v.get(":, 0").duplicate();
            NDArray accS = s.get(":, 0").duplicate();
            for (int i = 1; i < n; i++) {
                MergeState.mergeStateInPlace(acc, accS, v.get(":, {}", i), s.get(":, {}", i));
            }
            assertEquals(new Shape(7, 3, 16), all.get(0).getShape());
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(all.get(0)), Reference.toDoubles(acc)) < 1e-5);
            assertTrue(Reference.maxAbsDiff(Reference.toDoubles(all.get(1)), Reference.toDoubles(accS)) < 1e-5);
            float[] row0 = all.get(0).get("0, 0").toFloatArray();
            for (float x : row0) {
                assertEquals(0f, x, "all -inf states merge to 0");
            }
            assertEquals(Float.NEGATIVE_INFINITY, all.get(1).getFloat(0, 0));
        }
    }

    @Test
    void badShapesAreRejected() {
        try (NDManager m = manager.newSubManager()) {
            NDArray v = m.zeros(new Shape(2, 3, 4));
            NDArray s = m.zeros(new Shape(2, 4));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MergeState.mergeState(v, s, v, s));
            assertTrue(e.getMessage().contains("sA must have vA's shape without its last axis"), e.getMessage());
            NDArray s2 = m.zeros(new Shape(2, 3));
            NDArray v2 = m.zeros(new Shape(2, 3, 5));
            e = assertThrows(IllegalArgumentException.class, () -> MergeState.mergeState(v, s2, v2, s2));
            assertTrue(e.getMessage().contains("vB"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> MergeState.mergeStates(v, s2, -1));
            assertTrue(e.getMessage().contains("stateAxis"), e.getMessage());
        }
    }
}
