package org.flashdjl.ops.parallel;

import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;

import java.util.HashMap;
import java.util.Map;

/**
 * Named device scratch buffers of one device that grow on demand and are reused across calls (a {@code cuMemAlloc}
 * and {@code cuMemFree} per forward would synchronise the device and cost milliseconds). Not thread-safe.
 */
final class DeviceWorkspace implements AutoCloseable {

    private final int device;
    private final Map<String, DeviceBuffer> buffers = new HashMap<>();

    DeviceWorkspace(int device) {
        this.device = device;
    }

    /**
     * Returns a dense view of a named buffer, growing it when needed (the old contents are lost then).
     *
     * @param name the slot name
     * @param type the element type
     * @param shape the shape
     * @return a contiguous view at the start of the slot
     */
    DeviceTensor get(String name, DeviceDataType type, long... shape) {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        long bytes = Math.max(16, n * type.byteSize());
        DeviceBuffer b = buffers.get(name);
        if (b == null || b.getByteSize() < bytes) {
            if (b != null) {
                CudaRuntime.bind(device);
                CudaRuntime.synchronize("workspace " + name); // kernels may still read the old buffer
                b.close();
            }
            b = DeviceBuffer.allocate(device, bytes);
            buffers.put(name, b);
        }
        return b.view(type, shape);
    }

    /** Frees every buffer (after waiting for the device). */
    @Override
    public void close() {
        if (buffers.isEmpty()) {
            return;
        }
        CudaRuntime.bind(device);
        CudaRuntime.synchronize("workspace close");
        for (DeviceBuffer b : buffers.values()) {
            b.close();
        }
        buffers.clear();
    }
}
