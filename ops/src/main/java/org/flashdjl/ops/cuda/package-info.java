/**
 * The CUDA path: the driver through JCuda ({@link org.flashdjl.ops.cuda.CudaRuntime}), nvcc-built fatbins loaded
 * per device ({@link org.flashdjl.ops.cuda.KernelModule}), device views of NDArrays and raw memory
 * ({@link org.flashdjl.ops.cuda.DeviceTensor}), the flash-attention kernels' dispatch table
 * ({@link org.flashdjl.ops.cuda.FlashDispatch}), parameter block ({@link org.flashdjl.ops.cuda.FlashParams}) and
 * launcher ({@link org.flashdjl.ops.cuda.FlashAttention}), and the {@code flash} attention backend
 * ({@link org.flashdjl.ops.cuda.FlashBackend}).
 *
 * <p>Everything degrades to a reason string where no GPU, driver or kernels exist: nothing in this package throws
 * from static initialisation.
 */
package org.flashdjl.ops.cuda;
