package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;

import java.util.Arrays;

/**
 * The operand checks the paged kernels ({@link PagedDecodeKernel}, {@link PagedPrefillKernel}) share, run before
 * any launch: one device and one dtype, NHD pools [numPages, pageSize, Hkv, D] that match the page table and are
 * dense, q and output [rows, Hq, D], an fp32 LSE [rows, Hq] with head stride 1, 16-byte vector loads, the key
 * offset's int32 range and one ALiBi slope per query head.
 */
final class PagedOperands {

    private PagedOperands() {}

    /**
     * Validates one call's operands.
     *
     * @param kernels what runs, for messages (e.g. {@code "the paged decode kernels"})
     * @param queryAxes the query's axes for messages (e.g. {@code "[totalQ, Hq, D]"})
     * @param q queries [rows, Hq, D]
     * @param k key pool [numPages, pageSize, Hkv, D]
     * @param v value pool, k's shape and strides
     * @param o output, q's shape
     * @param lse fp32 [rows, Hq] or null
     * @param workspaceDevice the device of the step's workspace
     * @param table the step's page table
     * @param keyOffset global index of each sequence's first paged key
     * @param spec the options
     * @throws IllegalArgumentException naming the operand and the rule
     */
    static void check(String kernels, String queryAxes, DeviceTensor q, DeviceTensor k, DeviceTensor v,
            DeviceTensor o, DeviceTensor lse, int workspaceDevice, PageTable table, long keyOffset,
            AttentionSpec spec) {
        int device = q.getDevice();
        if (device < 0) {
            throw new IllegalArgumentException("query is host memory; " + kernels + " need CUDA device memory");
        }
        Object[][] named = {{"query", q}, {"keyPages", k}, {"valuePages", v}, {"output", o}, {"lse", lse}};
        DeviceDataType type = q.getDataType();
        for (Object[] t : named) {
            DeviceTensor x = (DeviceTensor) t[1];
            if (x != null && x.getDevice() != device) {
                throw new IllegalArgumentException(t[0] + " is on " + where(x.getDevice()) + " but query is on "
                        + where(device) + "; all tensors must be on one device");
            }
            if (x != null && x != lse && x.getDataType() != type) {
                throw new IllegalArgumentException(t[0] + " has dtype " + x.getDataType() + " but query has " + type
                        + "; q, the pools and the output share one dtype");
            }
        }
        if (workspaceDevice != device) {
            throw new IllegalArgumentException("the workspace is on cuda:" + workspaceDevice + " but query is on "
                    + where(device));
        }
        if (q.rank() != 3) {
            throw new IllegalArgumentException("query must be " + queryAxes + ", got " + DeviceTensor.format(q.getShape()));
        }
        if (k.rank() != 4) {
            throw new IllegalArgumentException("keyPages must be [numPages, pageSize, Hkv, D] (NHD), got "
                    + DeviceTensor.format(k.getShape()));
        }
        if (!Arrays.equals(k.getShape(), v.getShape())) {
            throw new IllegalArgumentException("valuePages " + DeviceTensor.format(v.getShape()) + " must equal keyPages "
                    + DeviceTensor.format(k.getShape()) + " (" + kernels + " need the value head dim to equal the"
                    + " key head dim)");
        }
        if (!Arrays.equals(o.getShape(), q.getShape())) {
            throw new IllegalArgumentException("output " + DeviceTensor.format(o.getShape()) + " must equal query "
                    + DeviceTensor.format(q.getShape()));
        }
        long rows = q.size(0);
        long hq = q.size(1);
        long d = q.size(2);
        if (k.size(3) != d) {
            throw new IllegalArgumentException("head dim mismatch: keyPages head dim " + k.size(3) + ", query " + d);
        }
        if (k.size(1) != table.getPageSize()) {
            throw new IllegalArgumentException("keyPages page size " + k.size(1) + " differs from the page table's "
                    + table.getPageSize());
        }
        if (k.size(0) < 1) {
            throw new IllegalArgumentException("empty cache: keyPages has 0 pages; a paged cache needs numPages >= 1");
        }
        table.checkFits(k.size(0));
        if (lse != null) {
            if (lse.getDataType() != DeviceDataType.FP32 || !Arrays.equals(lse.getShape(), new long[] {rows, hq})) {
                throw new IllegalArgumentException("lse must be fp32 [" + rows + ", " + hq + "] (query rows x heads),"
                        + " got " + lse.getDataType() + " " + DeviceTensor.format(lse.getShape()));
            }
            if (hq > 1 && lse.stride(1) != 1 || lse.stride(0) < 0) {
                throw new IllegalArgumentException("lse must have head stride 1 and a non-negative row stride, got"
                        + " strides " + DeviceTensor.format(lse.getStrides()));
            }
        }
        q.checkVectorLoads("query", kernels);
        o.checkVectorLoads("output", kernels);
        k.checkVectorLoads("keyPages", kernels);
        v.checkVectorLoads("valuePages", kernels);
        if (!Arrays.equals(k.getStrides(), v.getStrides())) {
            throw new IllegalArgumentException("keyPages strides " + DeviceTensor.format(k.getStrides())
                    + " and valuePages strides " + DeviceTensor.format(v.getStrides()) + " must be equal");
        }
        if (k.size(0) > 1 && k.stride(0) != k.size(1) * k.stride(1)) {
            throw new IllegalArgumentException("pages must be dense in the pool: page stride " + k.stride(0)
                    + " must equal pageSize * token stride = " + k.size(1) * k.stride(1) + " (strides "
                    + DeviceTensor.format(k.getStrides()) + ")");
        }
        if (k.size(0) * k.size(1) > Integer.MAX_VALUE || rows > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the pool (" + k.size(0) * k.size(1) + " token slots) or the queries ("
                    + rows + " rows) exceed the kernels' int32 indexing");
        }
        int maxLen = 0;
        for (int len : table.getSeqLens()) {
            maxLen = Math.max(maxLen, len);
        }
        if (keyOffset < 0 || keyOffset + maxLen > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("keyOffset " + keyOffset + " must be in 0.."
                    + (Integer.MAX_VALUE - maxLen) + " (global key positions are int32)");
        }
        if (spec.hasAlibi() && spec.getAlibiSlopes().length != hq) {
            throw new IllegalArgumentException("alibiSlopes has " + spec.getAlibiSlopes().length
                    + " slopes; it needs one per query head (" + hq + ")");
        }
    }

    /**
     * Returns why the paged kernels have no kernel for a dtype, head dim and head ratio, or null.
     *
     * @param kernels what runs, for messages (e.g. {@code "the paged decode kernels"})
     * @param headDims the head dims with kernels, ascending
     * @param type the dtype of q and the pools
     * @param headDim D
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @return the reason naming the supported values, or null
     */
    static String unsupportedReason(String kernels, int[] headDims, DeviceDataType type, int headDim, int queryHeads,
            int kvHeads) {
        if (type != DeviceDataType.FP16 && type != DeviceDataType.BF16) {
            return "dtype " + type + " not supported by " + kernels + "; supported: fp16, bf16";
        }
        if (Arrays.stream(headDims).noneMatch(d -> d == headDim)) {
            return "head dim " + headDim + " not supported by " + kernels + "; supported: "
                    + Arrays.toString(headDims).replaceAll("[\\[\\]]", "");
        }
        if (kvHeads < 1 || queryHeads < 1 || queryHeads % kvHeads != 0) {
            return "query heads (" + queryHeads + ") must be a positive multiple of kv heads (" + kvHeads + ")";
        }
        return null;
    }

    private static String where(int device) {
        return device < 0 ? "the host" : "cuda:" + device;
    }
}
