package org.flashdjl.ops;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Argument checks shared by every operator, so that each kind of bad input gets the same clear message:
 * the argument's name, what it was, and the allowed values.
 */
public final class Checks {

    /** Floating-point types the NDArray operators accept. */
    public static final Set<DataType> FLOAT_TYPES =
            EnumSet.of(DataType.FLOAT16, DataType.FLOAT32, DataType.FLOAT64);

    private Checks() {}

    /**
     * Refuses dtypes that DJL 0.36.0's PyTorch JNI cannot handle and anything outside {@code allowed}.
     *
     * <p>bf16 tensors report {@link DataType#UNKNOWN} (or {@link DataType#BFLOAT16}) and converting them aborts
     * the JVM inside the JNI, so they are rejected here before DJL touches them.
     *
     * @param name the argument name used in the message
     * @param array the array to check
     * @param allowed the allowed dtypes
     * @throws IllegalArgumentException if the dtype is not allowed
     */
    public static void checkDataType(String name, NDArray array, Set<DataType> allowed) {
        checkDataType(name, array.getDataType(), allowed);
    }

    /**
     * Refuses a dtype outside {@code allowed}, with the bf16 explanation for bfloat16 and {@code UNKNOWN}.
     *
     * @param name the argument name used in the message
     * @param type the dtype to check
     * @param allowed the allowed dtypes
     * @throws IllegalArgumentException if the dtype is not allowed
     */
    public static void checkDataType(String name, DataType type, Set<DataType> allowed) {
        if (type == DataType.BFLOAT16 || type == DataType.UNKNOWN) {
            throw new IllegalArgumentException(name + " has dtype " + type
                    + " (bfloat16 NDArrays crash DJL 0.36.0's PyTorch JNI); allowed dtypes: " + names(allowed)
                    + ". Convert the tensor to float16 or float32 before DJL sees it, or use the flash backend"
                    + " on raw device memory.");
        }
        if (!allowed.contains(type)) {
            throw new IllegalArgumentException(
                    name + " has dtype " + type + "; allowed dtypes: " + names(allowed));
        }
    }

    /**
     * Checks the rank of an array.
     *
     * @param name the argument name
     * @param array the array
     * @param rank the required rank
     * @param layout a description of the expected axes, e.g. {@code "[batch, seq, heads, dim]"}
     */
    public static void checkRank(String name, NDArray array, int rank, String layout) {
        Shape shape = array.getShape();
        if (shape.dimension() != rank) {
            throw new IllegalArgumentException(name + " must have rank " + rank + " " + layout + ", got shape "
                    + shape);
        }
    }

    /**
     * Checks that two arrays live on the same device.
     *
     * @param nameA first argument name
     * @param a first array
     * @param nameB second argument name
     * @param b second array
     */
    public static void checkSameDevice(String nameA, NDArray a, String nameB, NDArray b) {
        if (!a.getDevice().equals(b.getDevice())) {
            throw new IllegalArgumentException(nameA + " is on " + a.getDevice() + " but " + nameB + " is on "
                    + b.getDevice() + "; all inputs must be on one device");
        }
    }

    /**
     * Checks that two arrays share a dtype.
     *
     * @param nameA first argument name
     * @param a first array
     * @param nameB second argument name
     * @param b second array
     */
    public static void checkSameDataType(String nameA, NDArray a, String nameB, NDArray b) {
        if (a.getDataType() != b.getDataType()) {
            throw new IllegalArgumentException(nameA + " has dtype " + a.getDataType() + " but " + nameB
                    + " has dtype " + b.getDataType() + "; they must match");
        }
    }

    /**
     * Checks {@code value >= min}.
     *
     * @param name argument name
     * @param value the value
     * @param min the smallest allowed value
     * @param meaning a note on the allowed values, e.g. {@code "-1 = unbounded"}
     */
    public static void checkAtLeast(String name, long value, long min, String meaning) {
        if (value < min) {
            throw new IllegalArgumentException(name + " must be >= " + min
                    + (meaning.isEmpty() ? "" : " (" + meaning + ")") + ", got " + value);
        }
    }

    /**
     * Formats a set of dtypes for a message.
     *
     * @param types the dtypes
     * @return e.g. {@code "float16, float32"}
     */
    public static String names(Set<DataType> types) {
        return types.stream().map(DataType::toString).sorted().collect(Collectors.joining(", "));
    }

    /**
     * Formats a shape or int list for a message.
     *
     * @param values the values
     * @return e.g. {@code "[0, 3, 7]"}
     */
    public static String list(int[] values) {
        return Arrays.toString(values);
    }
}
