package org.flashdjl.ops.cuda;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.util.NativeResource;

import com.sun.jna.Native;

import jcuda.Pointer;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * A view of tensor memory for kernels: an address, a shape, strides in elements, an element type and a device.
 *
 * <p>Two factories make one launch path serve both sources: {@link #fromNDArray(NDArray)} for PyTorch-engine
 * NDArrays (dense contiguous tensors, at most 2 GiB per call) and {@link #fromDevicePointer} for memory from JCuda
 * ({@link DeviceBuffer}) or any other allocator. A view owns nothing: keep the memory (the NDArray) alive while a
 * kernel uses it. Views are immutable; {@link #permute(int...)} and {@link #slice(int, long, long)} make new views
 * of the same memory.
 */
public final class DeviceTensor {

    /**
     * Largest tensor that DJL's {@code torchDirectByteBuffer} can wrap (a ByteBuffer's int capacity); {@link
     * #fromNDArray} reads larger arrays' address through a one-element view.
     */
    public static final long MAX_NDARRAY_BYTES = Integer.MAX_VALUE;

    private final long address; // address of element [0, ..., 0]
    private final long[] shape;
    private final long[] strides; // in elements, same rank as shape
    private final DeviceDataType dataType;
    private final int device; // CUDA ordinal; -1 = host memory (CPU NDArrays)

    private DeviceTensor(long address, long[] shape, long[] strides, DeviceDataType dataType, int device) {
        this.address = address;
        this.shape = shape;
        this.strides = strides;
        this.dataType = dataType;
        this.device = device;
    }

    /**
     * Describes memory at a device address.
     *
     * @param address the address of element [0, ..., 0]
     * @param shape the sizes, each {@code >= 0}
     * @param strides the strides in elements, one per axis (see {@link #contiguousStrides(long...)})
     * @param dataType the element type
     * @param device the CUDA device ordinal ({@code -1} for host memory)
     * @return the view
     * @throws IllegalArgumentException for mismatched ranks, negative sizes or a null address of a non-empty view
     */
    public static DeviceTensor fromDevicePointer(long address, long[] shape, long[] strides, DeviceDataType dataType,
            int device) {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(strides, "strides");
        Objects.requireNonNull(dataType, "dataType");
        if (shape.length != strides.length) {
            throw new IllegalArgumentException("shape " + format(shape) + " and strides " + format(strides)
                    + " must have the same rank");
        }
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("shape " + format(shape) + " has a negative size at axis " + i);
            }
            n = Math.multiplyExact(n, shape[i]);
        }
        if (n > 0 && address == 0) {
            throw new IllegalArgumentException("a non-empty tensor of shape " + format(shape) + " has address 0");
        }
        if (device < -1) {
            throw new IllegalArgumentException("device must be a CUDA ordinal >= 0 or -1 (host), got " + device);
        }
        return new DeviceTensor(address, shape.clone(), strides.clone(), dataType, device);
    }

    /**
     * Describes memory behind a JCuda pointer.
     *
     * @param pointer the pointer (e.g. {@link DeviceBuffer#getPointer()}, possibly {@code withByteOffset})
     * @param shape the sizes
     * @param strides the strides in elements
     * @param dataType the element type
     * @param device the CUDA device ordinal
     * @return the view
     */
    public static DeviceTensor fromDevicePointer(Pointer pointer, long[] shape, long[] strides,
            DeviceDataType dataType, int device) {
        return fromDevicePointer(CudaRuntime.address(pointer), shape, strides, dataType, device);
    }

    /**
     * Views a PyTorch-engine NDArray's memory (device or host) without copying.
     *
     * <p>Reads {@code data_ptr()} through DJL's package-private {@code PyTorchLibrary.torchDirectByteBuffer}; the
     * buffer is never read from Java here. The NDArray must stay open while a kernel uses the view.
     *
     * @param array a dense, contiguous PyTorch-engine NDArray of float16, float32 or int32
     * @return the view, with contiguous strides and the array's device ordinal (-1 on the CPU)
     * @throws IllegalArgumentException for other engines, closed or non-contiguous arrays, bf16 or other dtypes
     * @throws IllegalStateException if DJL's internals are not reachable
     */
    public static DeviceTensor fromNDArray(NDArray array) {
        Objects.requireNonNull(array, "array");
        DeviceDataType type = DeviceDataType.of(array.getDataType());
        long handle = TorchAccess.handle(array);
        long[] shape = array.getShape().getShape();
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        long bytes = n * type.byteSize();
        if (!TorchAccess.isContiguous(handle)) {
            throw new IllegalArgumentException("array of shape " + format(shape) + " is not contiguous (e.g. a "
                    + "transposed or strided view); DeviceTensor.fromNDArray takes dense contiguous arrays only: copy"
                    + " it first (e.g. array.duplicate() of a contiguous result, or a different layout)");
        }
        int device = array.getDevice().isGpu() ? array.getDevice().getDeviceId() : -1;
        long address;
        if (n == 0) {
            address = 0;
        } else if (bytes <= MAX_NDARRAY_BYTES) {
            address = TorchAccess.dataAddress(handle);
        } else {
            // DJL wraps data_ptr() in a ByteBuffer, whose capacity is an int: read the address of a one-element
            // view of the same memory (its data_ptr is the array's) instead
            try (NDArray first = array.reshape(n).get(new NDIndex("0:1"))) {
                address = TorchAccess.dataAddress(TorchAccess.handle(first));
            }
        }
        return new DeviceTensor(address, shape.clone(), contiguousStrides(shape), type, device);
    }

    /**
     * Returns row-major strides for a shape.
     *
     * @param shape the sizes
     * @return the strides in elements
     */
    public static long[] contiguousStrides(long... shape) {
        long[] strides = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= Math.max(1, shape[i]);
        }
        return strides;
    }

    /**
     * Checks the layout every kernel of this package needs to read a tensor with 16-byte vector loads: no negative
     * stride, last (head-dim) axis stride 1, a 16-byte aligned address and the other strides multiples of 8
     * elements. Empty tensors pass (nothing is read).
     *
     * @param name the argument name for messages
     * @param kernels what reads the tensor, for messages (e.g. {@code "the flash kernels"})
     * @throws IllegalArgumentException naming the argument, the offending stride or address and the rule
     */
    public void checkVectorLoads(String name, String kernels) {
        checkNonNegativeStrides(name);
        int last = rank() - 1;
        if (numel() == 0) {
            return;
        }
        if (size(last) > 1 && stride(last) != 1) {
            throw new IllegalArgumentException(name + " must have head-dim (last axis) stride 1, got strides "
                    + format(strides));
        }
        if (address % 16 != 0) {
            throw new IllegalArgumentException(name + " address 0x" + Long.toHexString(address)
                    + " is not 16-byte aligned; " + kernels + " load 16 bytes at a time");
        }
        for (int i = 0; i < last; i++) {
            if (size(i) > 1 && strides[i] % 8 != 0) {
                throw new IllegalArgumentException(name + " stride " + strides[i] + " at axis " + i + " (strides "
                        + format(strides) + ") is not a multiple of 8 elements; " + kernels
                        + " load 16 bytes at a time");
            }
        }
    }

    /**
     * Checks that no stride is negative.
     *
     * @param name the argument name for messages
     * @throws IllegalArgumentException naming the axis
     */
    public void checkNonNegativeStrides(String name) {
        for (int i = 0; i < strides.length; i++) {
            if (strides[i] < 0) {
                throw new IllegalArgumentException(name + " has a negative stride " + strides[i] + " at axis " + i);
            }
        }
    }

    /**
     * Returns the address of element [0, ..., 0].
     *
     * @return the address
     */
    public long getAddress() {
        return address;
    }

    /**
     * Returns the sizes.
     *
     * @return a copy of the shape
     */
    public long[] getShape() {
        return shape.clone();
    }

    /**
     * Returns the size of one axis.
     *
     * @param axis the axis
     * @return its size
     */
    public long size(int axis) {
        return shape[axis];
    }

    /**
     * Returns the strides in elements.
     *
     * @return a copy of the strides
     */
    public long[] getStrides() {
        return strides.clone();
    }

    /**
     * Returns the stride of one axis in elements.
     *
     * @param axis the axis
     * @return its stride
     */
    public long stride(int axis) {
        return strides[axis];
    }

    /**
     * Returns the rank.
     *
     * @return the number of axes
     */
    public int rank() {
        return shape.length;
    }

    /**
     * Returns the number of elements.
     *
     * @return the product of the sizes
     */
    public long numel() {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }

    /**
     * Returns the element type.
     *
     * @return the dtype
     */
    public DeviceDataType getDataType() {
        return dataType;
    }

    /**
     * Returns the CUDA device ordinal, or -1 for host memory.
     *
     * @return the ordinal
     */
    public int getDevice() {
        return device;
    }

    /**
     * Returns whether the view is dense row-major (strides of size-1 axes are ignored).
     *
     * @return true if contiguous
     */
    public boolean isContiguous() {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /**
     * Returns a view with permuted axes (e.g. {@code permute(0, 2, 1, 3)} turns bshd memory into a bhsd view).
     *
     * @param axes a permutation of {@code 0..rank-1}
     * @return the permuted view
     */
    public DeviceTensor permute(int... axes) {
        if (axes.length != shape.length) {
            throw new IllegalArgumentException("permute needs " + shape.length + " axes, got " + Arrays.toString(axes));
        }
        long[] s = new long[axes.length];
        long[] st = new long[axes.length];
        boolean[] seen = new boolean[axes.length];
        for (int i = 0; i < axes.length; i++) {
            int a = axes[i];
            if (a < 0 || a >= axes.length || seen[a]) {
                throw new IllegalArgumentException(Arrays.toString(axes) + " is not a permutation of 0.."
                        + (axes.length - 1));
            }
            seen[a] = true;
            s[i] = shape[a];
            st[i] = strides[a];
        }
        return new DeviceTensor(address, s, st, dataType, device);
    }

    /**
     * Returns the view of {@code [start, end)} along one axis.
     *
     * @param axis the axis
     * @param start the first index
     * @param end the end index (exclusive), {@code start <= end <= size(axis)}
     * @return the narrowed view
     */
    public DeviceTensor slice(int axis, long start, long end) {
        if (start < 0 || end < start || end > shape[axis]) {
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") out of range for axis " + axis
                    + " of size " + shape[axis]);
        }
        long[] s = shape.clone();
        s[axis] = end - start;
        return new DeviceTensor(address + start * strides[axis] * dataType.byteSize(), s, strides.clone(),
                dataType, device);
    }

    /**
     * Formats sizes or strides for messages.
     *
     * @param values the values
     * @return e.g. {@code "[2, 8, 128, 64]"}
     */
    public static String format(long[] values) {
        return Arrays.toString(values);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "DeviceTensor{" + dataType + " " + format(shape) + " strides " + format(strides) + " @0x"
                + Long.toHexString(address) + (device >= 0 ? " cuda:" + device : " host") + "}";
    }

    /** Reflection into DJL's PyTorch engine, resolved once. */
    private static final class TorchAccess {
        private static final String LIBRARY = "ai.djl.pytorch.jni.PyTorchLibrary";
        private static volatile Object lib;
        private static volatile Method directBuffer;
        private static volatile Method isContiguous;

        static long handle(NDArray array) {
            if (!array.getClass().getName().startsWith("ai.djl.pytorch.")
                    || !(array instanceof NativeResource)) {
                throw new IllegalArgumentException("DeviceTensor.fromNDArray takes PyTorch-engine NDArrays; got "
                        + array.getClass().getName() + " (engine " + array.getManager().getEngine().getEngineName()
                        + ")");
            }
            NativeResource<?> resource = (NativeResource<?>) array;
            if (resource.isReleased()) {
                throw new IllegalArgumentException("the NDArray " + array.getShape() + " is already closed");
            }
            Object handle = resource.getHandle();
            if (!(handle instanceof Long)) {
                throw new IllegalStateException("unexpected PyTorch NDArray handle type "
                        + (handle == null ? "null" : handle.getClass().getName()));
            }
            resolve(array.getClass().getClassLoader());
            return (Long) handle;
        }

        private static void resolve(ClassLoader loader) {
            if (lib != null) {
                return;
            }
            synchronized (TorchAccess.class) {
                if (lib != null) {
                    return;
                }
                try {
                    Class<?> c = Class.forName(LIBRARY, true, loader);
                    Field f = c.getDeclaredField("LIB");
                    f.setAccessible(true);
                    Method db = c.getDeclaredMethod("torchDirectByteBuffer", long.class);
                    db.setAccessible(true);
                    Method ic = c.getDeclaredMethod("torchIsContiguous", long.class);
                    ic.setAccessible(true);
                    directBuffer = db;
                    isContiguous = ic;
                    lib = f.get(null);
                } catch (ReflectiveOperationException | RuntimeException e) {
                    throw new IllegalStateException("cannot reach DJL's " + LIBRARY
                            + ".torchDirectByteBuffer/torchIsContiguous (DJL PyTorch engine 0.36.0 expected): " + e, e);
                }
            }
        }

        static boolean isContiguous(long handle) {
            try {
                return (Boolean) isContiguous.invoke(lib, handle);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("PyTorchLibrary.torchIsContiguous failed: " + e.getCause(), e);
            }
        }

        static long dataAddress(long handle) {
            ByteBuffer buffer;
            try {
                buffer = (ByteBuffer) directBuffer.invoke(lib, handle);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("PyTorchLibrary.torchDirectByteBuffer failed: " + e.getCause(), e);
            }
            if (buffer == null || !buffer.isDirect()) {
                throw new IllegalStateException("PyTorchLibrary.torchDirectByteBuffer returned no direct buffer");
            }
            return com.sun.jna.Pointer.nativeValue(Native.getDirectBufferPointer(buffer));
        }
    }
}
