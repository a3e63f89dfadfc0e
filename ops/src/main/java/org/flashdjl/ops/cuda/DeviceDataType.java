package org.flashdjl.ops.cuda;

import ai.djl.ndarray.types.DataType;

/**
 * Element types of {@link DeviceTensor}s. Unlike DJL 0.36.0's PyTorch engine, device memory can hold bfloat16.
 */
public enum DeviceDataType {
    /** IEEE half precision. */
    FP16("fp16", 2),
    /** bfloat16 (8-bit exponent, 7-bit mantissa). */
    BF16("bf16", 2),
    /** IEEE single precision. */
    FP32("fp32", 4),
    /** IEEE double precision. */
    FP64("fp64", 8),
    /** 8-bit signed integer. */
    INT8("int8", 1),
    /** 8-bit unsigned integer. */
    UINT8("uint8", 1),
    /** 32-bit signed integer (offsets such as {@code cuSeqlens}). */
    INT32("int32", 4),
    /** 64-bit signed integer. */
    INT64("int64", 8);

    private final String shortName;
    private final int byteSize;

    DeviceDataType(String shortName, int byteSize) {
        this.shortName = shortName;
        this.byteSize = byteSize;
    }

    /**
     * Returns the short name used in kernel names and messages.
     *
     * @return e.g. {@code "fp16"}
     */
    public String shortName() {
        return shortName;
    }

    /**
     * Returns the size of one element.
     *
     * @return bytes per element
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * Maps a DJL dtype to a device dtype.
     *
     * @param type the DJL dtype
     * @return the device dtype
     * @throws IllegalArgumentException for dtypes without a device counterpart (and for bf16, which DJL 0.36.0's
     *     PyTorch JNI cannot handle safely), naming the allowed ones
     */
    public static DeviceDataType of(DataType type) {
        switch (type) {
            case FLOAT16:
                return FP16;
            case FLOAT32:
                return FP32;
            case FLOAT64:
                return FP64;
            case INT8:
                return INT8;
            case UINT8:
                return UINT8;
            case INT32:
                return INT32;
            case INT64:
                return INT64;
            case BFLOAT16:
            case UNKNOWN:
                throw new IllegalArgumentException("dtype " + type + " NDArrays are not supported (bfloat16 crashes"
                        + " DJL 0.36.0's PyTorch JNI); allowed: float16, float32, float64, int8, uint8, int32, int64. bf16 kernels run on device"
                        + " memory via DeviceTensor.fromDevicePointer");
            default:
                throw new IllegalArgumentException(
                        "dtype " + type + " has no device view; allowed: float16, float32, float64, int8, uint8, int32, int64");
        }
    }

    /**
     * Parses a short name.
     *
     * @param name a short name such as {@code fp16}, {@code bf16}, {@code fp32}, {@code int32} (any case)
     * @return the dtype
     * @throws IllegalArgumentException naming the allowed values
     */
    public static DeviceDataType ofName(String name) {
        for (DeviceDataType t : values()) {
            if (t.shortName.equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown device dtype '" + name + "'; allowed: "
                + java.util.Arrays.stream(values()).map(t -> t.shortName).collect(java.util.stream.Collectors.joining(", ")));
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return shortName;
    }
}
