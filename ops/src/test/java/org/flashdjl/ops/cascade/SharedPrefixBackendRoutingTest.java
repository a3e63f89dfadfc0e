package org.flashdjl.ops.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedFixture;
import org.flashdjl.ops.testing.Reference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * How the shared-prefix wrappers route a step to a registered device {@link SharedPrefixBackend}: the CUDA one is
 * registered (and, without a GPU, declines); a recording backend (registered by this test's resources, active only
 * while a test enables it) receives the step and its layer calls, the calls it refuses run on the NDArray cascade,
 * explicitly named backends bypass it, and the end of the step closes it.
 */
class SharedPrefixBackendRoutingTest {

    /** A backend that takes decode steps while enabled and answers with the NDArray cascade, recording calls. */
    public static final class Recording implements SharedPrefixBackend {
        static volatile boolean enabled;
        static final List<String> CALLS = new ArrayList<>();

        /** Created by the ServiceLoader. */
        public Recording() {}

        @Override
        public String getName() {
            return "recording";
        }

        @Override
        public String unavailableReason() {
            return enabled ? null : "disabled outside SharedPrefixBackendRoutingTest";
        }

        @Override
        public String unsupportedReason(boolean decode, int queryHeads, int kvHeads, int headDim, Device device) {
            return decode ? null : "decode only";
        }

        @Override
        public Step begin(PageTable suffixes, int queryHeads, int kvHeads, int headDim, Device device) {
            CALLS.add("begin B=" + suffixes.getBatchSize());
            SharedPrefixBatchDecode inner = new SharedPrefixBatchDecode("gather", "math");
            inner.beginForward(suffixes, queryHeads, kvHeads, headDim, device);
            return new Step() {
                @Override
                public String unsupportedReason(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages,
                        NDArray vPages, AttentionSpec spec) {
                    return spec.hasAlibi() ? "no ALiBi here" : null;
                }

                @Override
                public AttentionOutput forward(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages,
                        NDArray vPages, AttentionSpec spec) {
                    CALLS.add("forward");
                    return inner.forward(q, kShared, vShared, kPages, vPages, spec);
                }

                @Override
                public void close() {
                    CALLS.add("close");
                    inner.close();
                }
            };
        }
    }

    @AfterEach
    void disable() {
        Recording.enabled = false;
        Recording.CALLS.clear();
    }

    @Test
    void theCudaBackendIsRegisteredAndDeclinesWithoutAGpu() {
        SharedPrefixBackend cuda = SharedPrefixCascade.deviceBackends().stream()
                .filter(b -> b.getName().equals("cuda")).findFirst().orElse(null);
        assertNotNull(cuda, "the CUDA shared-prefix backend is registered in META-INF/services");
        assertNotNull(cuda.unsupportedReason(true, 8, 2, 64, Device.cpu()), "CPU inputs are not its");
        assertNotNull(cuda.unsupportedReason(false, 8, 2, 64, Device.gpu()), "prefill is not its");
    }

    @Test
    void aDeviceBackendRunsTheStepAndRefusedCallsFallBack() {
        long seed = 4242;
        Random rnd = new Random(seed);
        int d = 32;
        int hq = 4;
        int hkv = 2;
        Recording.enabled = true;
        try (NDManager m = NDManager.newBaseManager()) {
            PagedFixture sfx = PagedFixture.create(m, rnd, 16, hkv, d, new int[] {3, 20, 0}, 1, DataType.FLOAT32);
            NDArray ks = m.randomNormal(new ai.djl.ndarray.types.Shape(24, hkv, d));
            NDArray vs = m.randomNormal(new ai.djl.ndarray.types.Shape(24, hkv, d));
            NDArray q = m.randomNormal(new ai.djl.ndarray.types.Shape(3, hq, d));
            AttentionSpec plain = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
            AttentionSpec alibi = plain.toBuilder().optAlibiSlopes(new float[] {0.5f, 0.25f, 0.125f, 0.0625f})
                    .build();
            AttentionOutput viaBackend;
            AttentionOutput fallback;
            try (SharedPrefixBatchDecode wrapper = new SharedPrefixBatchDecode()) {
                wrapper.beginForward(sfx.table, hq, hkv, d, m.getDevice());
                assertEquals("recording", wrapper.getDeviceBackend(), "seed " + seed);
                viaBackend = wrapper.forward(q, ks, vs, sfx.kPages, sfx.vPages, plain);
                fallback = wrapper.forward(q, ks, vs, sfx.kPages, sfx.vPages, alibi);
                wrapper.endForward();
                assertNull(wrapper.getDeviceBackend());
            }
            assertEquals(List.of("begin B=3", "forward", "close"), Recording.CALLS, "the refused call ran on the"
                    + " NDArray cascade, the end closed the step");
            try (SharedPrefixBatchDecode named = new SharedPrefixBatchDecode("gather", "online")) {
                named.beginForward(sfx.table, hq, hkv, d, m.getDevice());
                assertNull(named.getDeviceBackend(), "named backends bypass the device backends");
                AttentionOutput direct = named.forward(q, ks, vs, sfx.kPages, sfx.vPages, plain);
                AttentionOutput directAlibi = named.forward(q, ks, vs, sfx.kPages, sfx.vPages, alibi);
                double e1 = Reference.maxAbsDiff(Reference.toDoubles(viaBackend.getOutput()),
                        Reference.toDoubles(direct.getOutput()));
                double e2 = Reference.maxAbsDiff(Reference.toDoubles(fallback.getOutput()),
                        Reference.toDoubles(directAlibi.getOutput()));
                assertTrue(e1 <= 1e-5 && e2 <= 1e-5, "routed vs direct: " + e1 + ", " + e2 + "; seed " + seed);
            }
        }
    }
}
