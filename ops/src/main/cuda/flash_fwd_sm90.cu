// FlashDJL flash-attention forward kernels for Hopper (sm_90a only): wgmma.mma_async.
//
// ---------------------------------------------------------------------------------------------
// Launch convention (identical to flash_fwd.cu; read by the Java launcher):
//   kernel  flash_fwd_sm90_{fp16|bf16}_hd{64|128|256}_{plain|causal|general|positioned|packed}, and at hd 64 / 128
//           also ..._causal_alibi and ..._causal_softcap (FlashFwdSm90Params: FlashFwdParams, then the TMA tensor maps
//           of K and V; flash_params.h)
//   config  __device__ int <kernel>_cfg[5] = {threadsPerBlock, dynamicSmemBytes, Br, Bc, persistentBlocks}
//   grid  = (ceil(params.lq / Br), params.hq, params.batch), block = (threadsPerBlock, 1, 1),
//   packed: grid = (ceil(params.lq * G / Br), params.hkv, params.batch), G = hq / hkv, dense q/o/lse only;
//   persistentBlocks = P > 0 (plain / causal / causal_alibi / causal_softcap at hd 64 / 128): when
//   gx = ceil(lq / Br) <= P, launch <kernel>_persistent (same parameters, its own cfg) instead, grid
//   (min(gx * gy * gz, SMs), 1, 1): its CTAs walk the blocks of the grid above as work tiles (flash_fwd_sm90_body.cuh,
//   fwd_body)
//   dynamic smem = dynamicSmemBytes (set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first;
//   every value is > 48 KB), no clusters, stream of the caller. Do not launch when
//   ceil(lq / Br) == 0, hq == 0 or batch == 0 (a zero grid dimension is a launch error).
//   Only for devices of compute capability 9.0 (H100/H200/H800/GH200): this fatbin holds
//   sm_90a SASS only (no PTX), so module load / function lookup fails elsewhere.
//
// Semantics, caller requirements, variants: as flash_fwd.cu (plain = all keys visible,
// causal = bottom-right causal, causal_alibi = bottom-right causal with p.alibi_slopes (every other mask field
// ignored, as the causal kernel does; the causal pipeline with ALiBi's key term on the tensor cores),
// causal_softcap = bottom-right causal with p.mask.softcap (every other mask field and p.alibi_slopes ignored; the
// causal pipeline with the general kernel's softcap walks),
// general = every option of p.mask (windows, sinks, ALiBi, softcap, causal) at bottom-right positions,
// positioned = general at the params' key offset / query shift;
// dense or varlen (each side), any strides that are multiples of 8 elements, 16-byte aligned
// bases, GQA/MQA, ragged tails, Lk = 0, empty rows -> O = 0 and LSE = -inf). The mask / score rule
// is the one in flash_common.cuh. general / positioned without softcap and ALiBi run the plain
// kernel's pipeline (mask pass only on tiles with a hidden key, decided per tile); with either,
// every tile's scores go through ScoreMod (flash_common.cuh). Values no row of a block sees are zero-filled.
//
// Design: flash_fwd_sm90_body.cuh (the one kernel body, which paged_prefill_sm90.cu instantiates too).
// ---------------------------------------------------------------------------------------------

#include "flash_fwd_sm90_body.cuh"

// ------------------------------------ exported kernels ---------------------------------------
#define FLASHDJL_SM90_KERNEL(DTNAME, T, D, VNAME, VAR)                                         \
  FLASHDJL_SM90_KERNEL_FORM(DTNAME, T, D, VNAME, VAR, , false,                                 \
                            (flashdjl::sm90::persistent_blocks<D, flashdjl::VAR>()))
// the persistent form of a plain / causal kernel (hd 64 / 128): <kernel>_persistent, cfg[4] = 0
#define FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, D, VNAME, VAR) \
  FLASHDJL_SM90_KERNEL_FORM(DTNAME, T, D, VNAME, VAR, _persistent, true, 0)
#define FLASHDJL_SM90_KERNEL_FORM(DTNAME, T, D, VNAME, VAR, SUFFIX, PERSISTENT, PBLOCKS)       \
  using flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits =                           \
      flashdjl::sm90::FlashTraitsFor<D, flashdjl::VAR, PERSISTENT>;                                 \
  extern "C" __global__ void __launch_bounds__(                                                \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits::kThreads, 1)                 \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX(const __grid_constant__ FlashFwdSm90Params params) { \
    flashdjl::sm90::fwd_body<flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits, T, flashdjl::VAR>(params); \
  }                                                                                            \
  extern "C" __device__ int flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_cfg[5] = {     \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits::kThreads,                    \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits::kSmemBytes,                  \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits::Br,                          \
      flash_fwd_sm90_##DTNAME##_hd##D##_##VNAME##SUFFIX##_traits::Bc, PBLOCKS};

#define FLASHDJL_SM90_VARIANTS(DTNAME, T, D)            \
  FLASHDJL_SM90_KERNEL(DTNAME, T, D, plain, kPlain)     \
  FLASHDJL_SM90_KERNEL(DTNAME, T, D, causal, kCausal)   \
  FLASHDJL_SM90_KERNEL(DTNAME, T, D, general, kGeneral) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, D, positioned, kPositioned)

// packed (GQA packing): every head dim (FlashDispatch's PACKED_HEAD_DIMS lists the same)
#define FLASHDJL_SM90_DIMS(DTNAME, T)   \
  FLASHDJL_SM90_VARIANTS(DTNAME, T, 64)  \
  FLASHDJL_SM90_VARIANTS(DTNAME, T, 128) \
  FLASHDJL_SM90_VARIANTS(DTNAME, T, 256) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 64, packed, kPacked) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 128, packed, kPacked) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 256, packed, kPacked) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 64, plain, kPlain) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 64, causal, kCausal) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 128, plain, kPlain) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 128, causal, kCausal) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 64, causal_alibi, kCausalAlibi) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 128, causal_alibi, kCausalAlibi) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 64, causal_alibi, kCausalAlibi) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 128, causal_alibi, kCausalAlibi) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 64, causal_softcap, kCausalSoftcap) \
  FLASHDJL_SM90_KERNEL(DTNAME, T, 128, causal_softcap, kCausalSoftcap) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 64, causal_softcap, kCausalSoftcap) \
  FLASHDJL_SM90_PERSISTENT_KERNEL(DTNAME, T, 128, causal_softcap, kCausalSoftcap)

FLASHDJL_SM90_DIMS(fp16, __half)
FLASHDJL_SM90_DIMS(bf16, __nv_bfloat16)
