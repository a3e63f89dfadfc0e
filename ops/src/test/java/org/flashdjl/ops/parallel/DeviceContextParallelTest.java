package org.flashdjl.ops.parallel;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;
import org.flashdjl.ops.parallel.nccl.NcclBuffer;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * The GPU path's CPU-checkable parts: the NDArray adapter of {@link NcclProcessGroup} and the device forward's
 * refusals (the GPU runs are in the tests module's {@code NcclTwoProcessTest} / {@code DeviceAttentionCheck}).
 */
class DeviceContextParallelTest {

    @Test
    void ndArrayAdapterRefusesHostArraysByName() {
        try (NDManager m = NDManager.newBaseManager("PyTorch")) {
            NDArray x = m.zeros(new Shape(4, 8), DataType.FLOAT32);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NcclBuffer.of(x));
            assertTrue(e.getMessage().contains("moves GPU memory") && e.getMessage().contains("cpu"), e.getMessage());
        }
    }

    @Test
    void deviceForwardNeedsAnNcclGroup() throws Exception {
        List<LocalProcessGroup> groups = LocalProcessGroup.create(2);
        try (ContextParallelAttention cp = ContextParallelAttention.builder().optBackend("flash")
                .optContextParallelGroup(groups.get(0)).build()) {
            DeviceTensor t = DeviceTensor.fromDevicePointer(0x1000, new long[] {1, 2, 4, 8},
                    DeviceTensor.contiguousStrides(1, 2, 4, 8), DeviceDataType.FP16, 0);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cp.forward(t, t, t, t, null, AttentionSpec.builder().optCausal(true).build()));
            assertTrue(e.getMessage().contains("needs an NcclProcessGroup"), e.getMessage());
        } finally {
            for (LocalProcessGroup g : groups) {
                g.close();
            }
        }
    }
}
