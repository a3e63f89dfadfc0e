package org.flashdjl.engine.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.engine.ThirdPartyBackend;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.testing.CountingPagedBackend;
import org.flashdjl.ops.testing.Seeds;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The paged store's steps: one plan per step reused by every layer, the call's dense backend honoured, and the
 * same attention as the contiguous store (an independent path: packed copies and varlen attention).
 */
class PagedSequenceKvStoreTest {

    static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    @Test
    void onePlanPerStepAndTheCallsDenseBackend() {
        long seed = Seeds.next();
        int layers = 3;
        int hq = 4;
        int hkv = 2;
        int d = ThirdPartyBackend.HEAD_DIM; // the dropped-in dense backend runs this head dim only
        long[] ids = {10, 11, 12};
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
        try (NDManager m = manager.newSubManager();
                PagedSequenceKvStore paged = PagedSequenceKvStore.create(layers, hkv, d, DataType.FLOAT32,
                        Device.cpu(), 32, 4, CountingPagedBackend.NAME);
                ContiguousSequenceKvStore contiguous = new ContiguousSequenceKvStore(m, layers)) {
            m.getEngine().setRandomSeed((int) seed);
            for (long id : ids) {
                paged.addSequence(id);
                contiguous.addSequence(id);
            }
            int[][] steps = {{5, 3, 7}, {1, 1, 1}, {1, 2, 1}};
            for (int[] counts : steps) {
                long prepares = CountingPagedBackend.prepares();
                long forwards = CountingPagedBackend.forwards();
                long dense = ThirdPartyBackend.calls();
                paged.reserve(ids, counts);
                contiguous.reserve(ids, counts);
                int n = counts[0] + counts[1] + counts[2];
                for (int layer = 0; layer < layers; layer++) {
                    try (NDScope scope = new NDScope()) {
                        scope.suppressNotUsedWarning();
                        NDArray k = m.randomNormal(new Shape(n, hkv, d)); // [N, Hkv, D]
                        NDArray v = m.randomNormal(new Shape(n, hkv, d));
                        NDArray q = m.randomNormal(new Shape(n, hq, d)); // [N, Hq, D]
                        NDArray got = paged.append(layer, ids, counts, k, v).attend(q, counts, spec, "thirdparty")
                                .getOutput(); // [N, Hq, D]
                        NDArray want = contiguous.append(layer, ids, counts, k, v).attend(q, counts, spec, "math")
                                .getOutput();
                        float err = got.sub(want).abs().max().getFloat();
                        assertTrue(err < 1e-5f, "layer " + layer + ": paged vs contiguous store " + err
                                + " (seed " + seed + ")");
                    }
                }
                assertEquals(prepares + 1, CountingPagedBackend.prepares(), "one plan per step (seed " + seed + ")");
                assertEquals(forwards + layers, CountingPagedBackend.forwards(), "one run per layer");
                assertTrue(ThirdPartyBackend.calls() > dense, "the call's dense backend runs the gathered keys");
            }
            paged.reserve(ids, new int[] {1, 1, 1});
            NDArray k = m.zeros(new Shape(3, hkv, d));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> paged.append(0, ids,
                    new int[] {1, 1, 1}, k, k).attend(m.zeros(new Shape(4, hq, d)), new int[] {2, 1, 1}, spec,
                    "math"));
            assertTrue(e.getMessage().contains("differ from the step's reservation"), e.getMessage());
        }
    }
}
