package org.flashdjl.ops.parallel;

import org.flashdjl.ops.cuda.DeviceDataType;
import java.util.Objects;

/**
 * A dense run of elements in device memory, as NCCL sees it: a raw CUDA device address, an element count and an
 * element type. It owns nothing: whoever allocated the memory keeps it alive while an operation uses it.
 *
 * <p>This is the seam between {@link NcclProcessGroup} and tensors: JCuda allocations (raw addresses) plug in
 * directly; DJL NDArrays plug in through {@link NcclProcessGroup#setNDArrayAdapter}, by default the CUDA package's
 * device view of NDArrays ({@code org.flashdjl.ops.cuda.DeviceTensor#fromNDArray}).
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
