package org.flashdjl.ops.parallel;

/** Element types of {@link DeviceBuffer}s, with their {@code ncclDataType_t} codes and sizes. */
public enum DeviceDataType {
    /** {@code ncclInt8 = 0}. */
    INT8(0, 1),
    /** {@code ncclUint8 = 1}. */
    UINT8(1, 1),
    /** {@code ncclInt32 = 2}. */
    INT32(2, 4),
    /** {@code ncclInt64 = 4}. */
    INT64(4, 8),
    /** {@code ncclFloat16 = 6}. */
    FLOAT16(6, 2),
    /** {@code ncclFloat32 = 7}. */
    FLOAT32(7, 4),
    /** {@code ncclFloat64 = 8}. */
    FLOAT64(8, 8),
    /** {@code ncclBfloat16 = 9}. */
    BFLOAT16(9, 2);

    private final int ncclCode;
    private final int bytes;

    DeviceDataType(int ncclCode, int bytes) {
        this.ncclCode = ncclCode;
        this.bytes = bytes;
    }

    /**
     * Returns the {@code ncclDataType_t} value.
     *
     * @return the NCCL code
     */
    public int ncclCode() {
        return ncclCode;
    }

    /**
     * Returns the size of one element.
     *
     * @return bytes per element
     */
    public int bytes() {
        return bytes;
    }
}
