package org.flashdjl.ops.cuda;

import jcuda.Pointer;

import org.flashdjl.ops.paged.PageTable;

/**
 * The device half of one paged step, shared by {@link PagedDecodeKernel.DecodeStep} and
 * {@link PagedPrefillKernel.PrefillStep}: the page table uploaded once as one int32 buffer
 * {@code [indptr (B + 1) | indices (nnz) | seq lens (B) | the step's own ints]} (decode: its split counters,
 * prefill: its {@code qoIndptr}), the step's small kernel arguments (ALiBi slopes) uploaded on first use, and the
 * close rule: wait for the device (no kernel may still read the step), then free. A step built with a null buffer
 * has no device memory: it builds launches but refuses to run them (the launchers' validation tests build such
 * steps).
 */
abstract class PagedStepBuffers implements AutoCloseable {

    /** The step's page table. */
    final PageTable table;
    /** The CUDA ordinal the buffers live on. */
    final int device;
    /** int32 [B + 1 | nnz | B | extra]; null for a step without device memory. */
    final DeviceBuffer tableBuffer;
    private final String what;
    private DeviceWorkspace arguments; // the ALiBi slopes of the step's calls, on first use
    private volatile boolean closed;

    /**
     * Wraps an uploaded table ({@link #upload}).
     *
     * @param what the step's name in messages ("paged decode", "paged prefill")
     * @param table the page table
     * @param device the CUDA ordinal
     * @param tableBuffer the upload, or null (no device memory)
     */
    PagedStepBuffers(String what, PageTable table, int device, DeviceBuffer tableBuffer) {
        this.what = what;
        this.table = table;
        this.device = device;
        this.tableBuffer = tableBuffer;
    }

    /**
     * Uploads {@code [indptr | indices | seq lens | extra]} as int32 into a new device buffer.
     *
     * @param table the page table
     * @param extra the step's own ints after the sequence lengths
     * @param device the CUDA ordinal
     * @return the buffer (the caller owns it)
     */
    static DeviceBuffer upload(PageTable table, int[] extra, int device) {
        int[] indptr = table.getIndptr();
        int[] indices = table.getIndices();
        int[] lens = table.getSeqLens();
        int[] all = new int[Math.addExact(indptr.length + indices.length + lens.length, extra.length)];
        System.arraycopy(indptr, 0, all, 0, indptr.length);
        System.arraycopy(indices, 0, all, indptr.length, indices.length);
        System.arraycopy(lens, 0, all, indptr.length + indices.length, lens.length);
        System.arraycopy(extra, 0, all, indptr.length + indices.length + lens.length, extra.length);
        DeviceBuffer tb = DeviceBuffer.allocate(device, 4L * all.length);
        try {
            tb.copyFromHost(Pointer.to(all), 0, 4L * all.length);
        } catch (RuntimeException e) {
            tb.close();
            throw e;
        }
        return tb;
    }

    /**
     * Returns the page table.
     *
     * @return the table
     */
    public PageTable getPageTable() {
        return table;
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException(what + " workspace is closed (end of step)");
        }
    }

    long indptrAddress() {
        return tableBuffer == null ? 0 : tableBuffer.getAddress();
    }

    long indicesAddress() {
        return indptrAddress() + 4L * (table.getBatchSize() + 1);
    }

    long seqLensAddress() {
        return indicesAddress() + 4L * table.getIndices().length;
    }

    /** The address of the step's own ints (after the sequence lengths). */
    long extraAddress() {
        return seqLensAddress() + 4L * table.getBatchSize();
    }

    // The step's small kernel arguments (ALiBi slopes): uploaded once, shared by the layers.
    DeviceWorkspace arguments() {
        if (arguments == null) {
            arguments = new DeviceWorkspace(device);
        }
        return arguments;
    }

    /** Frees what a subclass allocated besides the table (called by {@link #close} after the device is idle). */
    void closeMore() {
    }

    /** Waits for the device, then frees the uploaded table, the arguments and what the subclass holds. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (tableBuffer == null) {
            return;
        }
        CudaRuntime.bind(device);
        CudaRuntime.synchronize(what + " workspace close");
        tableBuffer.close();
        if (arguments != null) {
            arguments.close();
        }
        closeMore();
    }
}
