/**
 * The CUDA path: the driver through JCuda ({@link org.flashdjl.ops.cuda.CudaRuntime}), nvcc-built fatbins loaded
 * per device ({@link org.flashdjl.ops.cuda.KernelModule}), device views of NDArrays and raw memory
 * ({@link org.flashdjl.ops.cuda.DeviceTensor}), the flash-attention kernels' dispatch table
 * ({@link org.flashdjl.ops.cuda.FlashDispatch}), parameter block ({@link org.flashdjl.ops.cuda.FlashParams}) and
 * launcher ({@link org.flashdjl.ops.cuda.FlashAttention}), and the {@code flash} attention backend
 * ({@link org.flashdjl.ops.cuda.FlashBackend}); the merge-state kernels ({@link org.flashdjl.ops.cuda.MergeStateKernel}),
 * paged decode with split-KV ({@link org.flashdjl.ops.cuda.PagedDecodeKernel}) and the {@code cuda} paged attention
 * backend ({@link org.flashdjl.ops.cuda.CudaPagedAttentionBackend}), whose by-value parameter structs are packed by
 * {@link org.flashdjl.ops.cuda.KernelStruct}.
 *
 * <p>Everything degrades to a reason string where no GPU, driver or kernels exist: nothing in this package throws
 * from static initialisation.
 */
package org.flashdjl.ops.cuda;
