package org.flashdjl.ops.cuda;

import jcuda.driver.CUDA_MEMCPY2D;
import jcuda.driver.CUmemorytype;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import java.util.Arrays;

/**
 * Strided device-to-device copies and fills of {@link DeviceTensor} views on the legacy default stream (where the
 * kernels of this library run and where the NCCL process group waits for data), so they are ordered with the
 * kernels and with the collectives without a host synchronisation.
 */
public final class DeviceCopy {

    private static final CUstream LEGACY = null; // the legacy default stream

    private DeviceCopy() {}

    /**
     * Copies {@code src} into {@code dst} (same shape and dtype, any non-negative strides): both views are
     * reordered by the destination's strides (largest first), the inner axes that are dense in both then collapse
     * into one row (a single element when none is), the largest remaining axis becomes the rows of one
     * {@code cuMemcpy2DAsync}, the others are looped over.
     *
     * @param src the source view
     * @param dst the destination view, not overlapping the source
     */
    public static void copy(DeviceTensor src, DeviceTensor dst) {
        if (!Arrays.equals(src.getShape(), dst.getShape()) || src.getDataType() != dst.getDataType()) {
            throw new IllegalArgumentException("copy needs one shape and dtype: " + src + " -> " + dst);
        }
        if (src.numel() == 0) {
            return;
        }
        int[] order = byStrideDescending(dst);
        src = src.permute(order);
        dst = dst.permute(order);
        int rank = src.rank();
        int esz = src.getDataType().byteSize();
        long width = 1; // elements per row
        int a = rank - 1;
        while (a >= 0 && (src.size(a) == 1 || (src.stride(a) == width && dst.stride(a) == width))) {
            width *= src.size(a);
            a--;
        }
        CudaRuntime.bind(src.getDevice());
        if (a < 0) {
            check(JCudaDriver.cuMemcpyDtoDAsync(CudaRuntime.pointer(dst.getAddress()),
                    CudaRuntime.pointer(src.getAddress()), width * esz, LEGACY), "cuMemcpyDtoDAsync");
            return;
        }
        int rows = 0;
        for (int i = 1; i <= a; i++) {
            if (src.size(i) > src.size(rows)) {
                rows = i;
            }
        }
        long[] shape = src.getShape();
        int[] outer = new int[a]; // the looped axes
        int n = 0;
        for (int i = 0; i <= a; i++) {
            if (i != rows) {
                outer[n++] = i;
            }
        }
        long[] idx = new long[n];
        while (true) {
            long so = 0;
            long d = 0;
            for (int i = 0; i < n; i++) {
                so += idx[i] * src.stride(outer[i]);
                d += idx[i] * dst.stride(outer[i]);
            }
            CUDA_MEMCPY2D c = new CUDA_MEMCPY2D();
            c.srcMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
            c.srcDevice = CudaRuntime.pointer(src.getAddress() + so * esz);
            c.srcPitch = src.stride(rows) * esz;
            c.dstMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
            c.dstDevice = CudaRuntime.pointer(dst.getAddress() + d * esz);
            c.dstPitch = dst.stride(rows) * esz;
            c.WidthInBytes = width * esz;
            c.Height = shape[rows];
            check(JCudaDriver.cuMemcpy2DAsync(c, LEGACY), "cuMemcpy2DAsync");
            int i = n - 1;
            while (i >= 0 && ++idx[i] == shape[outer[i]]) {
                idx[i] = 0;
                i--;
            }
            if (i < 0) {
                return;
            }
        }
    }

    // The axes of t ordered by decreasing stride (stable), so that the densest axis comes last.
    private static int[] byStrideDescending(DeviceTensor t) {
        Integer[] axes = new Integer[t.rank()];
        for (int i = 0; i < axes.length; i++) {
            axes[i] = i;
        }
        Arrays.sort(axes, (a, b) -> Long.compare(t.stride(b), t.stride(a)));
        int[] order = new int[axes.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = axes[i];
        }
        return order;
    }

    /**
     * Fills a dense view with a 32-bit pattern ({@code cuMemsetD32Async}).
     *
     * @param t a contiguous 4-byte view
     * @param bits the pattern, e.g. {@code Float.floatToIntBits(Float.NEGATIVE_INFINITY)}
     */
    public static void fill32(DeviceTensor t, int bits) {
        checkDense(t, 4);
        if (t.numel() > 0) {
            CudaRuntime.bind(t.getDevice());
            check(JCudaDriver.cuMemsetD32Async(CudaRuntime.pointer(t.getAddress()), bits, t.numel(), LEGACY),
                    "cuMemsetD32Async");
        }
    }

    /**
     * Fills a dense view with a 16-bit pattern ({@code cuMemsetD16Async}).
     *
     * @param t a contiguous 2-byte view
     * @param bits the pattern
     */
    public static void fill16(DeviceTensor t, short bits) {
        checkDense(t, 2);
        if (t.numel() > 0) {
            CudaRuntime.bind(t.getDevice());
            check(JCudaDriver.cuMemsetD16Async(CudaRuntime.pointer(t.getAddress()), bits, t.numel(), LEGACY),
                    "cuMemsetD16Async");
        }
    }

    private static void checkDense(DeviceTensor t, int esz) {
        if (t.getDataType().byteSize() != esz || !t.isContiguous()) {
            throw new IllegalArgumentException("fill needs a contiguous " + esz + "-byte view, got " + t);
        }
    }

    private static void check(int result, String call) {
        CudaRuntime.check(result, call);
    }
}
