package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.junit.jupiter.api.Test;

/** The {@code flash} backend's registration and reasons on a machine without a GPU (and with one). */
class FlashBackendTest {

    @Test
    void registeredThroughTheServiceLoader() {
        AttentionBackend flash = AttentionBackends.get("flash");
        assertEquals(FlashBackend.class, flash.getClass());
        assertTrue(flash.supportsVarlen());
        assertTrue(AttentionBackends.names().contains("flash"));
    }

    @Test
    void reasonsWithoutAGpu() {
        assumeFalse(CudaRuntime.isAvailable(), "a GPU machine: the GPU suite covers flash there");
        AttentionBackend flash = AttentionBackends.get("flash");
        String why = flash.unavailableReason();
        assertNotNull(why);
        assertTrue(why.startsWith("CUDA not available: "), why);
        assertEquals(0, CudaRuntime.getDeviceCount());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> CudaRuntime.bind(0));
        assertTrue(e.getMessage().startsWith("CUDA not available: "), e.getMessage());
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray q = manager.randomNormal(new Shape(1, 2, 5, 64)).toType(DataType.FLOAT16, false);
            AttentionProblem problem = AttentionProblem.builder(q, q, q, AttentionSpec.builder().build()).build();
            assertTrue(flash.unsupportedReason(problem).contains("flash runs on GPU NDArrays only"));
            assertEquals("online", AttentionBackends.select("auto", problem).getName());
            UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class,
                    () -> AttentionBackends.select("flash", problem));
            assertTrue(u.getMessage().contains("attention backend 'flash' is not available: CUDA not available"),
                    u.getMessage());
        }
    }
}
