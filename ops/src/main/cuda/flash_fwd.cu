// FlashDJL flash-attention forward kernels (FlashAttention-2 design, mma.sync m16n8k16).
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by the Java launcher, org.flashdjl.ops.cuda):
//   kernel  flash_fwd_{fp16|bf16}_hd{32|64|96|128|192|256}_{plain|causal|general|positioned}(FlashFwdParams)
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, dynamicSmemBytes, Br, Bc}
//   grid  = (ceil(params.lq / Br), params.hq, params.batch), block = threadsPerBlock,
//   dynamic smem = dynamicSmemBytes (set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first).
//   No fourth convention: causal load balancing (heavy query blocks first) is done inside the
//   kernel by reversing blockIdx.x.
//
// Variants (all support dense and varlen, bhsd/bshd/any row stride, GQA/MQA, ragged tails):
//   plain   : no mask (every key 0..Lk-1 visible); ignores causal/window/sinks/alibi/softcap.
//   causal  : bottom-right causal only; ignores window/sinks/alibi/softcap and params.causal.
//   general : everything from params (causal flag, window, sinks, alibi slopes, softcap), bottom-right.
//   positioned: general at the params' positions (mask.key_offset, mask.query_shift: mask_params.h), dense.
//
// Requirements on the caller (not checked beyond head_dim):
//   * params.head_dim == compiled D (otherwise the kernel returns without writing anything),
//   * q/k/v/o base pointers 16-byte aligned and all row/head/batch strides multiples of 8
//     elements (16-byte cp.async / vector stores), head-dim stride 1,
//   * scale > 0, hq % hkv == 0, varlen: cu_seqlens_* monotone, params.lq/lk >= every length.
//   * cu_seqlens_q and cu_seqlens_k are independent: either may be null (that side is dense).
//
// Semantics (the library's one definition; see key_visible() / ScoreMod in flash_common.cuh):
//   pos(i) = i + Lk - Lq; causal: j <= pos(i); window (l, r): pos(i)-l <= j <= pos(i)+r
//   (bounds < 0 are unbounded); keys j < sinks ignore the left bound; s = scale*q.k,
//   softcap: s = c*tanh(s/c); alibi: s -= slope[h]*|pos(i)-j|; LSE natural log, fp32, laid out
//   like the output without its head-dim axis (batch / head / row strides in the params);
//   a row without visible keys writes O = 0 and LSE = -inf.
//
// Design: the FA2 body in flash_fwd_body.cuh (shared with paged_prefill.cu).
// ---------------------------------------------------------------------------------------------

#include "flash_fwd_body.cuh"

// ------------------------------------ exported kernels ---------------------------------------
#define FLASHDJL_KERNEL(DTNAME, T, D, VNAME, VAR)                                              \
  extern "C" __global__ void __launch_bounds__(flashdjl::TraitsFor<D>::kThreads,               \
                                               flashdjl::TraitsFor<D>::kMinBlocks)             \
      flash_fwd_##DTNAME##_hd##D##_##VNAME(const FlashFwdParams params) {                      \
    flashdjl::flash_fwd_body<flashdjl::TraitsFor<D>, T, flashdjl::VAR>(params);                \
  }                                                                                            \
  extern "C" __device__ int flash_fwd_##DTNAME##_hd##D##_##VNAME##_cfg[4] = {                  \
      flashdjl::TraitsFor<D>::kThreads, flashdjl::TraitsFor<D>::kSmemBytes,                    \
      flashdjl::TraitsFor<D>::Br, flashdjl::TraitsFor<D>::Bc};

#define FLASHDJL_VARIANTS(DTNAME, T, D)        \
  FLASHDJL_KERNEL(DTNAME, T, D, plain, kPlain) \
  FLASHDJL_KERNEL(DTNAME, T, D, causal, kCausal) \
  FLASHDJL_KERNEL(DTNAME, T, D, general, kGeneral) \
  FLASHDJL_KERNEL(DTNAME, T, D, positioned, kPositioned)

#ifndef FLASHDJL_HEAD_DIMS_ONLY_128
#define FLASHDJL_DIMS(DTNAME, T)   \
  FLASHDJL_VARIANTS(DTNAME, T, 32)  \
  FLASHDJL_VARIANTS(DTNAME, T, 64)  \
  FLASHDJL_VARIANTS(DTNAME, T, 96)  \
  FLASHDJL_VARIANTS(DTNAME, T, 128) \
  FLASHDJL_VARIANTS(DTNAME, T, 192) \
  FLASHDJL_VARIANTS(DTNAME, T, 256)
#else
#define FLASHDJL_DIMS(DTNAME, T) FLASHDJL_VARIANTS(DTNAME, T, 128)
#endif

FLASHDJL_DIMS(fp16, __half)
FLASHDJL_DIMS(bf16, __nv_bfloat16)
