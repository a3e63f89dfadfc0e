package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.cuda.CudaEvent;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.CudaStream;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceCopy;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.DeviceWorkspace;
import org.flashdjl.ops.cuda.FlashAttention;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The one device runtime of {@code org.flashdjl.ops.cuda} on a GPU: streams and events (what the NCCL process group
 * runs on), workspace slots that copy kernel arguments only when they change, strided device copies of views
 * whose densest axis is not the last (a bhsd LSE seen as [B, L, H]), and flash varlen/ALiBi calls whose offsets and
 * slopes live in a reused workspace.
 */
@Tag("gpu")
class DeviceRuntimeGpuTest {

    @BeforeEach
    void gpu() {
        GpuCheck.assumeGpu();
        CudaRuntime.bind(GpuCheck.DEVICE);
    }

    @Test
    void streamsAndEvents() {
        int dev = GpuCheck.DEVICE;
        assertFalse(CudaStream.legacy(dev).isNonBlocking());
        try (CudaStream s = CudaStream.create(dev, true);
                CudaEvent e = CudaEvent.create(dev);
                DeviceBuffer b = DeviceBuffer.allocate(dev, 1 << 20)) {
            assertTrue(s.isNonBlocking());
            assertTrue(s.getHandle() != 0);
            b.fill32(7);
            e.record(CudaStream.legacy(dev));
            s.waitFor(e); // the stream's later work is ordered after the fill
            e.record(s);
            e.synchronize();
            assertTrue(e.isComplete());
            s.synchronize();
        }
    }

    @Test
    void workspaceSlotsCopyOnlyChangedContents() {
        int dev = GpuCheck.DEVICE;
        try (DeviceWorkspace ws = new DeviceWorkspace(dev)) {
            DeviceTensor a = ws.int32("offsets", new int[] {0, 3, 9});
            assertArrayEquals(new int[] {0, 3, 9}, read(a, 3));
            assertEquals(a.getAddress(), ws.int32("offsets", new int[] {0, 3, 9}).getAddress(), "same slot");
            DeviceTensor b = ws.int32("offsets", new int[] {0, 4, 5});
            assertEquals(a.getAddress(), b.getAddress(), "a slot that fits is reused");
            assertArrayEquals(new int[] {0, 4, 5}, read(b, 3), "changed contents are copied");
            int[] longer = new int[100];
            for (int i = 0; i < longer.length; i++) {
                longer[i] = 3 * i;
            }
            assertArrayEquals(longer, read(ws.int32("offsets", longer), longer.length), "a grown slot holds them");
            DeviceTensor f = ws.fp32("slopes", new float[] {0.5f, 0.25f});
            int[] bits = read(f, 2);
            assertEquals(0.5f, Float.intBitsToFloat(bits[0]));
            assertEquals(0.25f, Float.intBitsToFloat(bits[1]));
        }
    }

    @Test
    void copiesViewsWhoseDensestAxisIsNotTheLast() {
        // src: dense [2, 3, 4]; dst: [2, 3, 4] seen through a [2, 4, 3] buffer (strides 12, 1, 3), as a bhsd LSE
        // [B, H, L] is seen as [B, L, H]
        int dev = GpuCheck.DEVICE;
        int[] values = new int[24];
        for (int i = 0; i < values.length; i++) {
            values[i] = 100 + i;
        }
        try (DeviceBuffer src = DeviceBuffer.allocate(dev, 4L * 24); DeviceBuffer dst = DeviceBuffer.allocate(dev,
                4L * 24)) {
            src.copyFromHost(Pointer.to(values), 0, 4L * 24);
            dst.fill32(-1);
            DeviceCopy.copy(src.view(DeviceDataType.INT32, 2, 3, 4),
                    dst.view(DeviceDataType.INT32, 2, 4, 3).permute(0, 2, 1));
            int[] got = new int[24];
            dst.copyToHost(Pointer.to(got), 0, 4L * 24);
            for (int b = 0; b < 2; b++) {
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 4; j++) {
                        assertEquals(values[(b * 3 + i) * 4 + j], got[(b * 4 + j) * 3 + i], b + "," + i + "," + j);
                    }
                }
            }
        }
    }

    @Test
    void varlenAndAlibiArgumentsLiveInAReusedWorkspace() {
        // The same call twice through one workspace (the second copies nothing) matches the float64 reference.
        try (DeviceWorkspace ws = new DeviceWorkspace(GpuCheck.DEVICE)) {
            TestMemory reused = new TestMemory() {
                @Override
                public Buf allocate(long bytes) {
                    return TestMemory.GPU.allocate(bytes);
                }

                @Override
                public void launch(FlashAttention call) {
                    CudaRuntime.bind(GpuCheck.DEVICE);
                    call.run(ws);
                    call.run(ws);
                }
            };
            GpuCheck.runVarlen(reused, new GpuCheck.Varlen(DeviceDataType.FP16, "all", 8, 2, 64,
                    new int[] {17, 0, 113}, new int[] {20, 5, 113}));
            GpuCheck.runVarlen(reused, new GpuCheck.Varlen(DeviceDataType.BF16, "alibi", 4, 4, 128,
                    new int[] {1, 33}, new int[] {64, 40}));
        }
    }

    private static int[] read(DeviceTensor t, int n) {
        int[] out = new int[n];
        CudaRuntime.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(out), CudaRuntime.pointer(t.getAddress()), 4L * n),
                "cuMemcpyDtoH");
        return out;
    }
}
