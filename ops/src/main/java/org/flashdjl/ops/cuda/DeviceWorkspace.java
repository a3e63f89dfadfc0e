package org.flashdjl.ops.cuda;

import jcuda.Pointer;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Named device buffers of one device that grow on demand and are reused across calls: the scratch of a
 * multi-launch operator (receive buffers, partial states) and the small read-only arguments of its kernels
 * (sequence offsets, ALiBi slopes), so a step allocates and frees nothing on its hot path ({@code cuMemFree} and
 * a {@code cuCtxSynchronize} per call would stall the device).
 *
 * <p>Memory is reused in stream order: a slot's new contents are written on the legacy default stream, after the
 * kernels queued there that read its old contents. A slot that must grow is freed after a synchronisation, which
 * happens only while the sizes settle. Not thread-safe: one operator (one thread) owns a workspace.
 */
public final class DeviceWorkspace implements DeviceArguments, AutoCloseable {

    private final int device;
    private final Map<String, DeviceBuffer> buffers = new HashMap<>();
    private final Map<String, Object> uploaded = new HashMap<>(); // slot -> host copy of its current contents

    /**
     * Creates an empty workspace (no device memory until the first slot is used).
     *
     * @param device the CUDA ordinal
     */
    public DeviceWorkspace(int device) {
        this.device = device;
    }

    /**
     * Returns the device ordinal.
     *
     * @return the ordinal
     */
    public int getDevice() {
        return device;
    }

    /**
     * Returns a dense view of a named buffer, growing it when needed (the old contents are lost then).
     *
     * @param name the slot name
     * @param type the element type
     * @param shape the shape
     * @return a contiguous view at the start of the slot
     */
    public DeviceTensor get(String name, DeviceDataType type, long... shape) {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        DeviceBuffer b = slot(name, Math.max(16, n * type.byteSize()));
        return b.view(type, shape);
    }

    /**
     * Returns a slot holding int32 values (e.g. sequence offsets), copying them only when the slot does not hold
     * these values already.
     *
     * @param name the slot name
     * @param data the values
     * @return an int32 [data.length] view
     */
    @Override
    public DeviceTensor int32(String name, int[] data) {
        DeviceTensor t = get(name, DeviceDataType.INT32, data.length);
        if (!(uploaded.get(name) instanceof int[] old && Arrays.equals(old, data))) {
            copy(name, Pointer.to(data), 4L * data.length);
            uploaded.put(name, data.clone());
        }
        return t;
    }

    /**
     * Returns a slot holding fp32 values (e.g. ALiBi slopes), copying them only when the slot does not hold these
     * values already.
     *
     * @param name the slot name
     * @param data the values
     * @return an fp32 [data.length] view
     */
    @Override
    public DeviceTensor fp32(String name, float[] data) {
        DeviceTensor t = get(name, DeviceDataType.FP32, data.length);
        if (!(uploaded.get(name) instanceof float[] old && Arrays.equals(old, data))) {
            copy(name, Pointer.to(data), 4L * data.length);
            uploaded.put(name, data.clone());
        }
        return t;
    }

    // Synchronous cuMemcpyHtoD: it runs on the legacy default stream after the kernels queued there.
    private void copy(String name, Pointer host, long bytes) {
        uploaded.remove(name);
        buffers.get(name).copyFromHost(host, 0, bytes);
    }

    private DeviceBuffer slot(String name, long bytes) {
        DeviceBuffer b = buffers.get(name);
        if (b == null || b.getByteSize() < bytes) {
            if (b != null) {
                CudaRuntime.bind(device);
                CudaRuntime.synchronize("workspace " + name); // kernels may still read the old buffer
                b.close();
                buffers.remove(name);
                uploaded.remove(name);
            }
            b = DeviceBuffer.allocate(device, bytes);
            buffers.put(name, b);
        }
        return b;
    }

    /** Frees every buffer (after waiting for the device). */
    @Override
    public void close() {
        uploaded.clear();
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
