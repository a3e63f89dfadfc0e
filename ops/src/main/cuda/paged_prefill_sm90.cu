// FlashDJL paged prefill / append kernels for Hopper (sm_90a only): the wgmma pipeline of flash_fwd_sm90.cu with its
// K / V tiles read from page pools.
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by org.flashdjl.ops.cuda.PagedPrefillKernel; as paged_prefill.cu's, other names):
//   kernel  paged_prefill_sm90_{fp16|bf16}_hd{64|128}_{causal|general}(PagedPrefillSm90Params: PagedPrefillParams,
//           then the TMA flag, the box rows and the tensor maps of the K and V pools; paged_prefill_params.h)
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, dynamicSmemBytes, Br, Bc}
//   grid  = (ceil(params.lq / Br), params.hq, params.batch), block = (threadsPerBlock, 1, 1), dynamic smem =
//   dynamicSmemBytes (> 48 KB: set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first), no clusters. Only for
//   devices of compute capability 9.0: this fatbin holds sm_90a SASS only.
//   causal  : bottom-right causal only (ignores window / sinks / ALiBi / softcap / params.causal);
//   general : every option from params (flash_common.cuh's rule), keys at mask.key_offset (a cascade suffix).
//
// Semantics and requirements: paged_prefill.cu's (the same PagedPrefillParams, the same results within the flash
// error budget): sequence b has queries q[qo_indptr[b] .. qo_indptr[b+1]) and Lk_b = seq_lens[b] paged tokens, query i
// at global position key_offset + Lk_b - Lq_b + i; LSE natural log fp32 [totalQ, Hq]; a row without visible keys
// writes O = 0 and LSE = -inf. 16-byte aligned q / o / pools, strides multiples of 8 elements, head-dim stride 1.
//
// Design: flash_fwd_sm90_body.cuh's fwd_body (producer warpgroup, mbarrier ring, two wgmma consumer warpgroups) with
// SP = PagedPrefillSm90Params. Whole key tiles of a sequence come by TMA when the page size is a multiple of 8:
// Bc / box_rows boxes per 64 columns, each inside one page, issued by as many producer threads, each looking its
// box's page up. Otherwise (the last, partial tile; value tiles with rows the mask hides; smaller or odd page sizes;
// tma == 0) cp.async: each lane of a producer warp looks one of the warp's 32 rows up in the table (any page size >= 1,
// a tile may straddle pages) and the threads that copy a row take its pool slot by a shuffle; rows past Lk_b are
// zero-filled without a read, so unused pool pages are never touched. Page ids are read before the producer waits for
// the ring slot, and a key tile's lookups serve the value tile of the same index.
// ---------------------------------------------------------------------------------------------

#include "flash_fwd_sm90_body.cuh"

#define FLASHDJL_PAGED_PREFILL_SM90(DTNAME, T, D, VNAME, VAR)                                                  \
  using paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits = flashdjl::sm90::TraitsFor<D, flashdjl::VAR>; \
  extern "C" __global__ void __launch_bounds__(paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits::kThreads, 1) \
      paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME(const __grid_constant__ PagedPrefillSm90Params params) { \
    flashdjl::sm90::fwd_body<paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits, T, flashdjl::VAR>(params);   \
  }                                                                                                            \
  extern "C" __device__ int paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_cfg[4] = {                         \
      paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits::kThreads,                                        \
      paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits::kSmemBytes,                                      \
      paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits::Br,                                              \
      paged_prefill_sm90_##DTNAME##_hd##D##_##VNAME##_traits::Bc};

#define FLASHDJL_PAGED_PREFILL_SM90_DT(D, VNAME, VAR)                  \
  FLASHDJL_PAGED_PREFILL_SM90(fp16, __half, D, VNAME, VAR)             \
  FLASHDJL_PAGED_PREFILL_SM90(bf16, __nv_bfloat16, D, VNAME, VAR)

FLASHDJL_PAGED_PREFILL_SM90_DT(64, causal, kCausal)
FLASHDJL_PAGED_PREFILL_SM90_DT(64, general, kGeneral)
FLASHDJL_PAGED_PREFILL_SM90_DT(128, causal, kCausal)
FLASHDJL_PAGED_PREFILL_SM90_DT(128, general, kGeneral)
