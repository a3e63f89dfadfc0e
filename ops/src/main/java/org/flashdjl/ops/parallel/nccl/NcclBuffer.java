package org.flashdjl.ops.parallel.nccl;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;

import java.util.Objects;

/**
 * A dense run of elements in device memory, as NCCL sees it: a raw CUDA device address, an element count and an
 * element type. It owns nothing: whoever allocated the memory keeps it alive while an operation uses it.
 *
 * <p>This is the seam between {@link NcclProcessGroup} and tensors: raw addresses (JCuda allocations) plug in
 * directly, dense device views through {@link #of(DeviceTensor)} and PyTorch-engine GPU NDArrays through
 * {@link #of(NDArray)} (the CUDA package's one NDArray device view, {@link DeviceTensor#fromNDArray}).
 *
 * @param pointer the device address of the first element ({@code CUdeviceptr}), non-zero unless count is 0
 * @param count the number of elements, {@code >= 0}
 * @param type the element type
 */
public record NcclBuffer(long pointer, long count, DeviceDataType type) {

    /**
     * Validates the fields.
     *
     * @param pointer the device address
     * @param count the element count
     * @param type the element type
     */
    public NcclBuffer {
        Objects.requireNonNull(type, "type");
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        if (pointer == 0 && count > 0) {
            throw new IllegalArgumentException("a device buffer of " + count + " elements needs a non-null pointer");
        }
    }

    /**
     * Returns the buffer of a contiguous device view.
     *
     * @param t the view (fp16, bf16, fp32, int32, int64, ...)
     * @return its address, element count and type
     * @throws IllegalArgumentException for a view that is not contiguous
     */
    public static NcclBuffer of(DeviceTensor t) {
        if (!t.isContiguous()) {
            throw new IllegalArgumentException("NCCL needs a contiguous buffer, got " + t);
        }
        return new NcclBuffer(t.numel() == 0 ? 0 : t.getAddress(), t.numel(), t.getDataType());
    }

    /**
     * Returns the buffer of a GPU NDArray: its memory through {@link DeviceTensor#fromNDArray}.
     *
     * @param array a dense contiguous GPU NDArray of the PyTorch engine (float16/float32/int32)
     * @return its device buffer
     * @throws IllegalArgumentException for host arrays, other engines, non-contiguous arrays, bf16
     */
    public static NcclBuffer of(NDArray array) {
        if (!array.getDevice().isGpu()) {
            throw new IllegalArgumentException("NCCL moves GPU memory, but the NDArray " + array.getShape() + " is on "
                    + array.getDevice() + ": move it to the group's GPU first (array.toDevice(Device.gpu("
                    + "group.device()), false)), or use LocalProcessGroup on the CPU");
        }
        return of(DeviceTensor.fromNDArray(array));
    }

    /**
     * Returns the size in bytes.
     *
     * @return {@code count * type.byteSize()}
     */
    public long bytes() {
        return count * type.byteSize();
    }

    /**
     * Returns a sub-range of this buffer.
     *
     * @param offset the first element, {@code 0 <= offset <= count}
     * @param length the number of elements, {@code offset + length <= count}
     * @return the view
     */
    public NcclBuffer slice(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > count) {
            throw new IllegalArgumentException("slice [" + offset + ", " + (offset + length) + ") is outside the "
                    + count + " elements of this buffer");
        }
        return new NcclBuffer(length == 0 ? pointer : pointer + offset * type.byteSize(), length, type);
    }
}
