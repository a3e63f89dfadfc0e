package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@link MergeStateKernel}'s checks and parameter packing, on fake device addresses (no GPU, no launch). */
class MergeStateKernelTest {

    private static final long BASE = 1L << 40;

    private static DeviceTensor t(long address, DeviceDataType type, long... shape) {
        return DeviceTensor.fromDevicePointer(address, shape, DeviceTensor.contiguousStrides(shape), type, 0);
    }

    @Test
    void pairPicksTheVectorKernelAndPacksStrides() {
        DeviceTensor va = t(BASE, DeviceDataType.FP16, 17, 4, 128);
        DeviceTensor vb = t(BASE + (1 << 20), DeviceDataType.FP16, 17, 4, 128);
        DeviceTensor sa = t(BASE + (2 << 20), DeviceDataType.FP32, 17, 4);
        DeviceTensor sb = t(BASE + (3 << 20), DeviceDataType.FP32, 17, 4);
        MergeStateKernel k = MergeStateKernel.mergeStateInPlace(va, sa, vb, sb);
        assertEquals("merge_state_fp16_vec", k.kernelName());
        KernelStruct p = k.getParams();
        assertEquals(BASE, p.get("v_out"));
        assertEquals(512L, p.get("v_a_row_stride"));
        assertEquals(128L, p.get("v_a_head_stride"));
        assertEquals(4L, p.get("s_b_row_stride"));
        assertEquals(17, p.get("rows"));
        assertEquals(4, p.get("heads"));
        assertEquals(128, p.get("head_dim"));
        // 16 chunks of 8 per row -> 16 rows per block -> ceil(68 / 16) blocks
        assertEquals(5, k.getGridX());
    }

    @Test
    void oddHeadDimOrStridesFallBackToScalar() {
        DeviceTensor va = t(BASE, DeviceDataType.BF16, 3, 2, 100);
        DeviceTensor vb = t(BASE + (1 << 20), DeviceDataType.BF16, 3, 2, 100);
        DeviceTensor sa = t(BASE + (2 << 20), DeviceDataType.FP32, 3, 2);
        DeviceTensor sb = t(BASE + (3 << 20), DeviceDataType.FP32, 3, 2);
        assertEquals("merge_state_bf16_scalar", MergeStateKernel.mergeStateInPlace(va, sa, vb, sb).kernelName());
        DeviceTensor misaligned = t(BASE + 2, DeviceDataType.FP32, 3, 2, 64);
        DeviceTensor other = t(BASE + (1 << 20), DeviceDataType.FP32, 3, 2, 64);
        assertEquals("merge_state_fp32_scalar",
                MergeStateKernel.mergeStateInPlace(misaligned, sa, other, sb).kernelName());
    }

    @Test
    void bhsdGroupsIntoRowsAndHeads() {
        DeviceTensor va = t(BASE, DeviceDataType.FP16, 2, 3, 5, 64);
        DeviceTensor vb = t(BASE + (1 << 20), DeviceDataType.FP16, 2, 3, 5, 64);
        DeviceTensor sa = t(BASE + (2 << 20), DeviceDataType.FP32, 2, 3, 5);
        DeviceTensor sb = t(BASE + (3 << 20), DeviceDataType.FP32, 2, 3, 5);
        KernelStruct p = MergeStateKernel.mergeStateInPlace(va, sa, vb, sb).getParams();
        assertEquals(2, p.get("rows")); // [B] x [H * L]
        assertEquals(15, p.get("heads"));
        assertEquals(960L, p.get("v_a_row_stride"));
        assertEquals(64L, p.get("v_a_head_stride"));
        assertEquals(15L, p.get("s_a_row_stride"));
        assertEquals(1L, p.get("s_a_head_stride"));
    }

    @Test
    void stackedChecksDtypesShapesAndOverlap() {
        DeviceTensor v = t(BASE, DeviceDataType.FP32, 4, 16, 32, 128);
        DeviceTensor s = t(BASE + (16 << 20), DeviceDataType.FP32, 4, 16, 32);
        DeviceTensor o = t(BASE + (32 << 20), DeviceDataType.FP16, 4, 32, 128);
        DeviceTensor so = t(BASE + (48 << 20), DeviceDataType.FP32, 4, 32);
        MergeStateKernel k = MergeStateKernel.mergeStates(v, s, o, so);
        assertEquals("merge_states_fp32_fp16_wide", k.kernelName()); // few rows, many states
        assertEquals(4 * 32, k.getGridX());
        assertEquals(16, k.getParams().get("states"));
        assertEquals("merge_states_fp32_fp32_vec", MergeStateKernel.mergeStates(
                t(BASE, DeviceDataType.FP32, 4, 3, 32, 128), t(BASE + (16 << 20), DeviceDataType.FP32, 4, 3, 32),
                t(BASE + (32 << 20), DeviceDataType.FP32, 4, 32, 128), null).kernelName());
        assertEquals(32L * 128, k.getParams().get("v_a_state_stride"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStates(t(BASE, DeviceDataType.FP16, 4, 16, 32, 128), s,
                        t(BASE + (32 << 20), DeviceDataType.BF16, 4, 32, 128), so));
        assertTrue(e.getMessage().contains("allowed (v -> vOut)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStates(v, s, t(BASE + 64, DeviceDataType.FP32, 4, 32, 128), so));
        assertTrue(e.getMessage().contains("vOut overlaps v"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStates(v, t(BASE + (16 << 20), DeviceDataType.FP32, 4, 16, 31), o, so));
        assertTrue(e.getMessage().contains("s must be fp32 [4, 16, 32]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStates(t(BASE, DeviceDataType.FP32, 4, 0, 32, 128),
                        t(BASE + (16 << 20), DeviceDataType.FP32, 4, 0, 32), o, so));
        assertTrue(e.getMessage().contains("at least one state"), e.getMessage());
    }

    @Test
    void pairRejectsBadInputsBeforeAnyLaunch() {
        DeviceTensor va = t(BASE, DeviceDataType.FP16, 8, 4, 64);
        DeviceTensor vb = t(BASE + (1 << 20), DeviceDataType.FP16, 8, 4, 64);
        DeviceTensor sa = t(BASE + (2 << 20), DeviceDataType.FP32, 8, 4);
        DeviceTensor sb = t(BASE + (3 << 20), DeviceDataType.FP32, 8, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStateInPlace(va, sa, t(BASE + (1 << 20), DeviceDataType.BF16, 8, 4, 64),
                        sb));
        assertTrue(e.getMessage().contains("vB has dtype bf16 but vA has fp16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStateInPlace(va, t(BASE + (2 << 20), DeviceDataType.FP16, 8, 4), vb, sb));
        assertTrue(e.getMessage().contains("sA must be fp32"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStateInPlace(va, t(BASE + (2 << 20), DeviceDataType.FP32, 8, 3), vb, sb));
        assertTrue(e.getMessage().contains("sA must have v's shape without its last axis [8, 4]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeState(va, sa, vb, sb, t(BASE + 128, DeviceDataType.FP16, 8, 4, 64), null));
        assertTrue(e.getMessage().contains("vOut overlaps vA without being the same view"), e.getMessage());
        DeviceTensor host = DeviceTensor.fromDevicePointer(BASE, new long[] {8, 4, 64},
                DeviceTensor.contiguousStrides(8, 4, 64), DeviceDataType.FP16, -1);
        e = assertThrows(IllegalArgumentException.class, () -> MergeStateKernel.mergeStateInPlace(host, sa, vb, sb));
        assertTrue(e.getMessage().contains("host memory"), e.getMessage());
        DeviceTensor transposed = t(BASE, DeviceDataType.FP16, 8, 64, 4).permute(0, 2, 1);
        e = assertThrows(IllegalArgumentException.class,
                () -> MergeStateKernel.mergeStateInPlace(transposed, sa, vb, sb));
        assertTrue(e.getMessage().contains("head-dim (last axis) stride 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MergeStateKernel.mergeStateInPlace(
                t(BASE, DeviceDataType.INT32, 8, 4, 64), sa, vb, sb));
        assertTrue(e.getMessage().contains("allowed: fp16, bf16, fp32"), e.getMessage());
    }
}
