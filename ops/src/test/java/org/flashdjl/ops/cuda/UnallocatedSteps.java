package org.flashdjl.ops.cuda;

import org.flashdjl.ops.paged.PageTable;

/**
 * Paged kernel steps without device memory, for the launchers' validation tests on machines without a GPU: they
 * build every launch (parameter blocks, kernel choice, checks) and refuse to run it.
 */
final class UnallocatedSteps {

    private UnallocatedSteps() {}

    /**
     * A decode step whose table and partials have no device memory.
     *
     * @param table the page table
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA ordinal the launches name
     * @param schedule the split-KV schedule
     * @return the step, planned for a device of {@link #SM_COUNT} SMs and compute capability 9.0 (an H100 / H200)
     */
    static PagedDecodeKernel.DecodeStep decode(PageTable table, int queryHeads, int kvHeads, int headDim, int device,
            PagedDecodeKernel.Schedule schedule) {
        return decode(table, queryHeads, kvHeads, headDim, device, schedule, 9);
    }

    /**
     * A decode step without device memory for a device of {@link #SM_COUNT} SMs and the given compute capability.
     *
     * @param table the page table
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA ordinal the launches name
     * @param schedule the split-KV schedule
     * @param computeMajor the compute capability's major number
     * @return the step
     */
    static PagedDecodeKernel.DecodeStep decode(PageTable table, int queryHeads, int kvHeads, int headDim, int device,
            PagedDecodeKernel.Schedule schedule, int computeMajor) {
        return decode(table, queryHeads, kvHeads, headDim, device, schedule, computeMajor, HOPPER_SHARED_MEMORY);
    }

    /**
     * A decode step without device memory for a device of {@link #SM_COUNT} SMs, the given compute capability and
     * opt-in shared memory a CTA.
     *
     * @param table the page table
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the CUDA ordinal the launches name
     * @param schedule the split-KV schedule
     * @param computeMajor the compute capability's major number
     * @param sharedMemoryOptin the device's opt-in shared memory a CTA (bytes)
     * @return the step
     */
    static PagedDecodeKernel.DecodeStep decode(PageTable table, int queryHeads, int kvHeads, int headDim, int device,
            PagedDecodeKernel.Schedule schedule, int computeMajor, int sharedMemoryOptin) {
        return new PagedDecodeKernel.DecodeStep(table, queryHeads, kvHeads, headDim, device, schedule,
                new CudaRuntime.DeviceInfo(device, "no device (validation only)", computeMajor, 0, SM_COUNT,
                        sharedMemoryOptin), null, null, null);
    }

    /** The opt-in shared memory a CTA of an H100 / H200 (227 KB). */
    static final int HOPPER_SHARED_MEMORY = 232448;

    /** The SM count of the decode steps built here (an H100's / H200's). */
    static final int SM_COUNT = 132;

    /**
     * A prefill step whose table has no device memory.
     *
     * @param table the page table
     * @param qoIndptr the query row offsets (validated as {@code PrefillStep.create} does)
     * @param device the CUDA ordinal the launches name
     * @return the step
     */
    static PagedPrefillKernel.PrefillStep prefill(PageTable table, int[] qoIndptr, int device) {
        return new PagedPrefillKernel.PrefillStep(table, PagedPrefillKernel.PrefillStep.checkQo(table, qoIndptr),
                device, null);
    }
}
