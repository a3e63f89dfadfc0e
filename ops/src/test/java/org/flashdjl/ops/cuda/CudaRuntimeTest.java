package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

import org.junit.jupiter.api.Test;

/** The parts of {@link CudaRuntime} that work without a GPU: pointer arithmetic, messages, reasons. */
class CudaRuntimeTest {

    @Test
    void pointerAddressesRoundTrip() {
        CUdeviceptr p = CudaRuntime.pointer(0x7f0012345600L);
        assertEquals(0x7f0012345600L, CudaRuntime.address(p));
        assertEquals(0x7f0012345610L, CudaRuntime.address(p.withByteOffset(16)));
        assertEquals(0, CudaRuntime.address(new CUdeviceptr()));
        DeviceTensor t = DeviceTensor.fromDevicePointer(p.withByteOffset(32), new long[] {2, 4},
                new long[] {4, 1}, DeviceDataType.FP16, 0);
        assertEquals(0x7f0012345620L, t.getAddress());
    }

    @Test
    void exceptionsNameTheCallAndResult() {
        CudaException e = new CudaException("cuLaunchKernel(flash_fwd_fp16_hd128_plain)",
                CUresult.CUDA_ERROR_INVALID_VALUE, "grid (1, 2, 3)");
        assertEquals("cuLaunchKernel(flash_fwd_fp16_hd128_plain) failed: CUDA_ERROR_INVALID_VALUE (1); grid (1, 2, 3)",
                e.getMessage());
        assertEquals(CUresult.CUDA_ERROR_INVALID_VALUE, e.getResult());
    }

    @Test
    void availabilityIsAReasonOrNull() {
        String why = CudaRuntime.unavailableReason();
        if (why == null) {
            assertTrue(CudaRuntime.getDeviceCount() > 0);
            assertNotNull(CudaRuntime.getDeviceInfo(0).name());
        } else {
            assertEquals(0, CudaRuntime.getDeviceCount());
            assertTrue(!why.contains("\n"), "one-line reason: " + why);
        }
        assertNull(FlashDispatch.unsupportedReason(DeviceDataType.FP16, 128));
    }
}
