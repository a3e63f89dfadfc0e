package org.flashdjl.ops.cuda;

import jcuda.Pointer;

import org.flashdjl.ops.paged.PageTable;

/**
 * The device half of one paged step, shared by {@link PagedDecodeKernel.DecodeStep} and
 * {@link PagedPrefillKernel.PrefillStep}: the page table uploaded once as one int32 buffer
 * {@code [indptr (B + 1) | indices (nnz) | seq lens (B) | the step's own ints]} (decode: its split counters,
 * prefill: its {@code qoIndptr}), each section starting on a {@value #SECTION_BYTES}-byte boundary, the step's small
 * kernel arguments (ALiBi slopes) uploaded on first use, and the close rule: wait for the device (no kernel may still
 * read the step), then free.
 *
 * <p>The alignment is measured, not cosmetic: with the page indices right after {@code indptr} (byte 8 at batch 1)
 * the split decode launches streamed 1-4 points of the copy rate slower than with each section on its own
 * boundary (docs/PERF.md, runs 70-72). A step built with a null buffer
 * has no device memory: it builds launches but refuses to run them (the launchers' validation tests build such
 * steps).
 */
abstract class PagedStepBuffers implements AutoCloseable {

    /** Every section of the uploaded table starts on this many bytes (cudaMalloc's own alignment). */
    static final int SECTION_BYTES = 256;
    private static final int SECTION_INTS = SECTION_BYTES / 4;

    /** The step's page table. */
    final PageTable table;
    /** The CUDA ordinal the buffers live on. */
    final int device;
    /** int32 [B + 1 | nnz | B | extra], each section aligned ({@link #sectionStarts}); null without device memory. */
    final DeviceBuffer tableBuffer;
    private final int[] sectionStarts; // int offsets of indptr, indices, seq lens, extra in tableBuffer
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
        this.sectionStarts = sectionStarts(table);
    }

    /**
     * Uploads {@code [indptr | indices | seq lens | extra]} as int32 into a new device buffer, each section starting
     * on a {@value #SECTION_BYTES}-byte boundary (the gaps are zero).
     *
     * @param table the page table
     * @param extra the step's own ints after the sequence lengths
     * @param device the CUDA ordinal
     * @return the buffer (the caller owns it)
     */
    static DeviceBuffer upload(PageTable table, int[] extra, int device) {
        int[] starts = sectionStarts(table);
        int[] all = new int[Math.addExact(starts[3], extra.length)];
        System.arraycopy(table.getIndptr(), 0, all, starts[0], table.getBatchSize() + 1);
        System.arraycopy(table.getIndices(), 0, all, starts[1], table.getIndices().length);
        System.arraycopy(table.getSeqLens(), 0, all, starts[2], table.getBatchSize());
        System.arraycopy(extra, 0, all, starts[3], extra.length);
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
     * The int offsets of the table's four sections in the uploaded buffer: indptr, indices, seq lens, extra.
     *
     * @param table the page table
     * @return {indptr, indices, seq lens, extra} in ints, each a multiple of {@value #SECTION_BYTES} / 4
     */
    static int[] sectionStarts(PageTable table) {
        int b = table.getBatchSize();
        int indices = alignUp(b + 1);
        int lens = Math.addExact(indices, alignUp(table.getIndices().length));
        int extra = Math.addExact(lens, alignUp(b));
        return new int[] {0, indices, lens, extra};
    }

    private static int alignUp(int ints) {
        return Math.multiplyExact(Math.addExact(ints, SECTION_INTS - 1) / SECTION_INTS, SECTION_INTS);
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
        return sectionAddress(0);
    }

    long indicesAddress() {
        return sectionAddress(1);
    }

    long seqLensAddress() {
        return sectionAddress(2);
    }

    /** The address of the step's own ints (after the sequence lengths). */
    long extraAddress() {
        return sectionAddress(3);
    }

    private long sectionAddress(int section) {
        // a step without device memory gives the offsets from 0 (the validation tests read the layout from them)
        return (tableBuffer == null ? 0 : tableBuffer.getAddress()) + 4L * sectionStarts[section];
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
