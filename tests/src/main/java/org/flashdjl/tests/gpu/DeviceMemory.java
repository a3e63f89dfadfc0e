package org.flashdjl.tests.gpu;

import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.cuda.CudaRuntime;

/** The device memory in use as the CUDA driver sees it: the GPU memory tests' and the model benchmark's one probe. */
public final class DeviceMemory {

    private DeviceMemory() {}

    /**
     * Returns the device's memory in use as the driver sees it ({@code cuMemGetInfo}: total - free, all processes
     * and every allocator included; PyTorch's caching allocator keeps freed blocks reserved, so this counts what
     * the allocator holds, not what live tensors use).
     *
     * @param device the CUDA ordinal
     * @return {used, total} in bytes
     */
    public static long[] inUse(int device) {
        CudaRuntime.bind(device);
        long[] free = new long[1];
        long[] total = new long[1];
        CudaRuntime.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {total[0] - free[0], total[0]};
    }
}
