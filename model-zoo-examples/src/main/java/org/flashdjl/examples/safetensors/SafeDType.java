package org.flashdjl.examples.safetensors;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The safetensors dtypes this reader converts to float32 or float16 (names as in the header). */
public enum SafeDType {
    /** IEEE float32. */
    F32(4),
    /** IEEE float16. */
    F16(2),
    /** bfloat16: converted to float32 on load (bf16 NDArrays crash DJL 0.36.0's PyTorch JNI). */
    BF16(2),
    /** IEEE float64: converted on load. */
    F64(8);

    private final int size;

    SafeDType(int size) {
        this.size = size;
    }

    /** @return bytes per element */
    public int getSize() {
        return size;
    }

    /**
     * Parses a header dtype.
     *
     * @param name e.g. {@code "BF16"}
     * @return the dtype, or null if unsupported
     */
    public static SafeDType of(String name) {
        for (SafeDType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** @return the supported names, comma separated */
    public static String supported() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}
