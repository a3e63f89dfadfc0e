/**
 * GPU benchmark and helpers shipped in the GPU bundle: {@link org.flashdjl.tests.gpu.FlashBench} (flash attention
 * timed with CUDA events, JSON lines) and {@link org.flashdjl.tests.gpu.HostFloats} (fp16/bf16 on the host).
 */
package org.flashdjl.tests.gpu;
