/**
 * The CUDA path and the one device runtime of the library: the driver through JCuda
 * ({@link org.flashdjl.ops.cuda.CudaRuntime}: contexts; {@link org.flashdjl.ops.cuda.CudaStream},
 * {@link org.flashdjl.ops.cuda.CudaEvent}), memory ({@link org.flashdjl.ops.cuda.DeviceBuffer},
 * {@link org.flashdjl.ops.cuda.DeviceWorkspace}, {@link org.flashdjl.ops.cuda.DeviceCopy}), device views of
 * NDArrays and raw memory ({@link org.flashdjl.ops.cuda.DeviceTensor}); nvcc-built fatbins loaded per device
 * ({@link org.flashdjl.ops.cuda.KernelModule}) and launched by a {@link org.flashdjl.ops.cuda.KernelLauncher}; the
 * flash-attention kernels' dispatch table ({@link org.flashdjl.ops.cuda.FlashDispatch}) and launcher
 * ({@link org.flashdjl.ops.cuda.FlashAttention}), the {@code flash} attention backend
 * ({@link org.flashdjl.ops.cuda.FlashBackend}); the merge-state kernels
 * ({@link org.flashdjl.ops.cuda.MergeStateKernel}), paged decode with split-KV
 * ({@link org.flashdjl.ops.cuda.PagedDecodeKernel}), paged prefill ({@link org.flashdjl.ops.cuda.PagedPrefillKernel})
 * and the {@code cuda} paged attention backend ({@link org.flashdjl.ops.cuda.CudaPagedAttentionBackend}); the
 * shared-prefix decode ({@link org.flashdjl.ops.cuda.CudaSharedPrefixDecode}, the cascade's {@code cuda} backend).
 * Every kernel's by-value parameter struct is packed by {@link org.flashdjl.ops.cuda.KernelStruct}.
 *
 * <p>Everything degrades to a reason string where no GPU, driver or kernels exist: nothing in this package throws
 * from static initialisation.
 */
package org.flashdjl.ops.cuda;
