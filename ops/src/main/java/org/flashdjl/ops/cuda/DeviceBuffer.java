package org.flashdjl.ops.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Device memory allocated with {@code cuMemAlloc} on one device's primary context, freed by {@link #close()}.
 * Used by the GPU tests, the benchmark and the backend's small uploads (ALiBi slopes, sequence offsets).
 *
 * <p>Every method binds the device's context to the calling thread first.
 */
public final class DeviceBuffer implements AutoCloseable {

    private static final AtomicLong LIVE_BYTES = new AtomicLong();

    private final int device;
    private final long byteSize;
    private CUdeviceptr pointer; // null after close; address 0 for an empty buffer

    private DeviceBuffer(int device, long byteSize, CUdeviceptr pointer) {
        this.device = device;
        this.byteSize = byteSize;
        this.pointer = pointer;
    }

    /**
     * Allocates uninitialised device memory.
     *
     * @param device the device ordinal
     * @param byteSize the size in bytes, {@code >= 0} (0 gives an empty buffer at address 0)
     * @return the buffer
     * @throws CudaException if the allocation fails (e.g. {@code CUDA_ERROR_OUT_OF_MEMORY})
     */
    public static DeviceBuffer allocate(int device, long byteSize) {
        if (byteSize < 0) {
            throw new IllegalArgumentException("byteSize must be >= 0, got " + byteSize);
        }
        CudaRuntime.bind(device);
        CUdeviceptr p = new CUdeviceptr();
        if (byteSize > 0) {
            CudaRuntime.check(JCudaDriver.cuMemAlloc(p, byteSize), "cuMemAlloc(" + byteSize + " bytes)");
            LIVE_BYTES.addAndGet(byteSize);
        }
        return new DeviceBuffer(device, byteSize, p);
    }

    /**
     * Returns the bytes of every device buffer allocated and not yet closed, all devices together: what FlashDJL's
     * own allocations (plans, step data, uploads) hold, apart from the engine's tensors and its caching allocator.
     *
     * @return the live bytes
     */
    public static long liveBytes() {
        return LIVE_BYTES.get();
    }

    /**
     * Allocates device memory and copies host bytes into it.
     *
     * @param device the device ordinal
     * @param data the bytes
     * @return the buffer
     */
    public static DeviceBuffer upload(int device, byte[] data) {
        DeviceBuffer b = allocate(device, data.length);
        b.copyFromHost(Pointer.to(data), 0, data.length);
        return b;
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
     * Returns the size.
     *
     * @return bytes
     */
    public long getByteSize() {
        return byteSize;
    }

    /**
     * Returns the device address of the first byte.
     *
     * @return the address (0 for an empty buffer)
     */
    public long getAddress() {
        return byteSize == 0 ? 0 : CudaRuntime.address(live());
    }

    /**
     * Returns the JCuda pointer.
     *
     * @return the pointer
     */
    public CUdeviceptr getPointer() {
        return live();
    }

    private CUdeviceptr live() {
        if (pointer == null) {
            throw new IllegalStateException("device buffer already closed");
        }
        return pointer;
    }

    /**
     * Views this buffer as a dense, contiguous (row-major) tensor starting at byte 0.
     *
     * @param type the element type
     * @param shape the shape; its elements must fit in the buffer
     * @return the view
     */
    public DeviceTensor view(DeviceDataType type, long... shape) {
        DeviceTensor t = DeviceTensor.fromDevicePointer(getAddress(), shape, DeviceTensor.contiguousStrides(shape),
                type, device);
        if (t.numel() * type.byteSize() > byteSize) {
            throw new IllegalArgumentException("a " + type + " tensor of shape " + DeviceTensor.format(shape)
                    + " needs " + t.numel() * type.byteSize() + " bytes; the buffer holds " + byteSize);
        }
        return t;
    }

    /**
     * Copies host memory into the buffer (synchronous).
     *
     * @param host the host data (e.g. {@code Pointer.to(float[])})
     * @param offset the destination byte offset
     * @param bytes the number of bytes
     */
    public void copyFromHost(Pointer host, long offset, long bytes) {
        checkRange(offset, bytes);
        if (bytes == 0) {
            return;
        }
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuMemcpyHtoD(live().withByteOffset(offset), host, bytes),
                "cuMemcpyHtoD(" + bytes + " bytes)");
    }

    /**
     * Copies from the buffer into host memory (synchronous, ordered after earlier work on the legacy stream).
     *
     * @param host the host destination (e.g. {@code Pointer.to(short[])})
     * @param offset the source byte offset
     * @param bytes the number of bytes
     */
    public void copyToHost(Pointer host, long offset, long bytes) {
        checkRange(offset, bytes);
        if (bytes == 0) {
            return;
        }
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuMemcpyDtoH(host, live().withByteOffset(offset), bytes),
                "cuMemcpyDtoH(" + bytes + " bytes)");
    }

    /**
     * Fills the whole buffer with a 16-bit pattern (e.g. a NaN to poison an fp16/bf16 output).
     *
     * @param pattern the bits of one element
     */
    public void fill16(short pattern) {
        if (byteSize % 2 != 0) {
            throw new IllegalStateException("fill16 needs an even byte size, got " + byteSize);
        }
        if (byteSize > 0) {
            CudaRuntime.bind(device);
            CudaRuntime.check(JCudaDriver.cuMemsetD16(live(), pattern, byteSize / 2), "cuMemsetD16");
        }
    }

    /**
     * Fills the whole buffer with a 32-bit pattern (e.g. {@code Float.floatToIntBits(Float.NaN)}).
     *
     * @param pattern the bits of one element
     */
    public void fill32(int pattern) {
        if (byteSize % 4 != 0) {
            throw new IllegalStateException("fill32 needs a byte size divisible by 4, got " + byteSize);
        }
        if (byteSize > 0) {
            CudaRuntime.bind(device);
            CudaRuntime.check(JCudaDriver.cuMemsetD32(live(), pattern, byteSize / 4), "cuMemsetD32");
        }
    }

    private void checkRange(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > byteSize) {
            throw new IndexOutOfBoundsException("byte range [" + offset + ", " + (offset + bytes)
                    + ") outside a device buffer of " + byteSize + " bytes");
        }
    }

    /** Frees the memory ({@code cuMemFree}); idempotent. */
    @Override
    public void close() {
        CUdeviceptr p = pointer;
        pointer = null;
        if (p != null && byteSize > 0) {
            CudaRuntime.bind(device);
            CudaRuntime.check(JCudaDriver.cuMemFree(p), "cuMemFree");
            LIVE_BYTES.addAndGet(-byteSize);
        }
    }
}
