package org.flashdjl.ops.cuda;

/**
 * Runs a kernel call that a launcher class (e.g. {@link FlashAttention}) has fully prepared: the kernel picked by
 * the dispatch table, the grid, and the packed by-value parameter block, whose pointers address memory that the
 * call's {@link DeviceArguments} placed. {@link #CUDA} launches on the device; anything that honours the kernels'
 * launch contract (the headers of {@code ops/src/main/cuda}) may stand in for it.
 */
public interface KernelLauncher {

    /**
     * The CUDA driver: the module's kernel on the legacy default stream of the device. The Hopper flash kernels get
     * the parameter block extended by their TMA tensor maps ({@link TensorMaps}); a call with at most
     * {@link KernelModule.Kernel#persistentBlocks()} query blocks per (sequence, head) runs the kernel's persistent
     * form {@code <name>_persistent} on at most one CTA per SM.
     */
    KernelLauncher CUDA = new KernelLauncher() {
        @Override
        public int computeCapability(int device) {
            return CudaRuntime.getDeviceInfo(device).computeCapability();
        }

        @Override
        public void launch(int device, FlashDispatch.KernelRef kernel, long rows, int gridY, int gridZ,
                byte[] parameters) {
            CudaRuntime.bind(device);
            KernelModule module = KernelModule.get(kernel.module(), device);
            KernelModule.Kernel k = module.getKernel(kernel.name());
            long gridX = (rows + k.rowsPerBlock() - 1) / k.rowsPerBlock();
            if (gridX == 0 || gridY == 0 || gridZ == 0) {
                return; // nothing to write; a zero grid dimension is a launch error
            }
            // The Hopper kernels take FlashFwdSm90Params: the block plus the K / V tensor maps only the driver encodes
            byte[] block = KernelModule.FLASH_FWD_SM90.equals(kernel.module())
                    ? TensorMaps.sm90Parameters(parameters, k.colsPerBlock())
                    : parameters;
            int persistentCtas = persistentCtas(gridX, gridY, gridZ, k.persistentBlocks(),
                    CudaRuntime.getDeviceInfo(device).smCount());
            if (persistentCtas > 0) { // the kernel's persistent form, each CTA walking several of the grid's blocks
                module.getKernel(kernel.name() + "_persistent").launch(persistentCtas, 1, 1, block);
            } else {
                k.launch((int) gridX, gridY, gridZ, block);
            }
        }

        @Override
        public void synchronize(int device, String what) {
            CudaRuntime.bind(device);
            CudaRuntime.synchronize(what);
        }
    };

    /**
     * Returns how many CTAs a kernel's persistent form {@code <name>_persistent} runs a grid on: {@code min(blocks,
     * smCount)} when the grid has at most {@code persistentBlocks} query blocks per (sequence, head), else 0 (the
     * per-tile kernel runs it: for long work the hardware's block scheduler, which follows the SMs' speeds, did
     * better than a static share; docs/kernel-notes.md).
     *
     * @param gridX query blocks per (sequence, head)
     * @param gridY heads (or key / value heads for GQA-packed kernels)
     * @param gridZ sequences
     * @param persistentBlocks the kernel's {@link KernelModule.Kernel#persistentBlocks()}; 0: no persistent form
     * @param smCount streaming multiprocessors of the device
     * @return the persistent grid's CTAs, or 0 to launch the per-tile kernel
     */
    static int persistentCtas(long gridX, long gridY, long gridZ, int persistentBlocks, int smCount) {
        if (persistentBlocks <= 0 || gridX > persistentBlocks) {
            return 0;
        }
        return (int) Math.min(gridX * gridY * gridZ, Math.max(1, smCount));
    }

    /**
     * Returns the compute capability of a device, which picks the kernel.
     *
     * @param device the CUDA ordinal
     * @return e.g. 90
     */
    int computeCapability(int device);

    /**
     * Launches a kernel with one by-value struct argument over the grid
     * {@code (ceil(rows / rowsPerBlock), gridY, gridZ)}, where {@code rowsPerBlock} is the kernel's configuration;
     * an empty grid launches nothing.
     *
     * @param device the CUDA ordinal
     * @param kernel the kernel and its module
     * @param rows the rows the grid's x dimension covers (e.g. the longest query sequence)
     * @param gridY blocks in y
     * @param gridZ blocks in z
     * @param parameters the packed parameter block
     */
    void launch(int device, FlashDispatch.KernelRef kernel, long rows, int gridY, int gridZ, byte[] parameters);

    /**
     * Waits for the launched work and surfaces its asynchronous errors.
     *
     * @param device the CUDA ordinal
     * @param what what was waited for, for messages
     */
    void synchronize(int device, String what);
}
