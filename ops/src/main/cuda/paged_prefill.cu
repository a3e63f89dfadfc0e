// FlashDJL paged prefill / append kernels: several query tokens per sequence (chunked prefill)
// against K/V page pools (NHD), causal bottom-right against the cached length.
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by org.flashdjl.ops.cuda.PagedPrefillKernel):
//   kernel  paged_prefill_{fp16|bf16}_hd{64|128}_{causal|general}(PagedPrefillParams)
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, dynamicSmemBytes, Br, Bc}
//   grid  = (ceil(params.lq / Br), params.hq, params.batch); dynamic smem as flash_fwd.cu.
//   causal  : bottom-right causal only (ignores window / sinks / ALiBi / softcap / params.causal);
//   general : every option from params through flash_common.cuh's key_visible/transform_score_l2.
//
// Semantics: sequence b has queries q[qo_indptr[b] .. qo_indptr[b+1]) (Lq_b rows) and Lk_b =
//   seq_lens[b] paged tokens; query i sits at global position key_offset + Lk_b - Lq_b + i, paged
//   token t is global key key_offset + t (cascade suffix). LSE natural log fp32 [totalQ, Hq]; a
//   row without visible keys writes O = 0 and LSE = -inf.
//
// Design: the FA2 kernel body of flash_fwd_body.cuh (flash_fwd_body with P = PagedPrefillParams; the one
//   implementation flash_fwd.cu instantiates too), whose K/V tiles come from pages through load_paged_tile: every
//   tile row looks its page up (any page size >= 1; a tile may straddle pages), rows past Lk_b are
//   zero-filled without a global read, so unused pool pages are never read.
// Requirements (checked by the Java launcher): 16-byte aligned q/o/pools, strides multiples of 8
// elements, head-dim stride 1, hq % hkv == 0, pages dense in the pool.
// ---------------------------------------------------------------------------------------------

#include "flash_fwd_body.cuh"

#define FLASHDJL_PAGED_PREFILL(DTNAME, T, D, VNAME, VAR)                                        \
  extern "C" __global__ void __launch_bounds__(flashdjl::TraitsFor<D>::kThreads,               \
                                               flashdjl::TraitsFor<D>::kMinBlocks)             \
      paged_prefill_##DTNAME##_hd##D##_##VNAME(const PagedPrefillParams params) {              \
    flashdjl::flash_fwd_body<flashdjl::TraitsFor<D>, T, flashdjl::VAR, PagedPrefillParams>(     \
        params);                                                                               \
  }                                                                                            \
  extern "C" __device__ int paged_prefill_##DTNAME##_hd##D##_##VNAME##_cfg[4] = {              \
      flashdjl::TraitsFor<D>::kThreads, flashdjl::TraitsFor<D>::kSmemBytes,                    \
      flashdjl::TraitsFor<D>::Br, flashdjl::TraitsFor<D>::Bc};

#define FLASHDJL_PAGED_PREFILL_DT(D, VNAME, VAR)                   \
  FLASHDJL_PAGED_PREFILL(fp16, __half, D, VNAME, VAR)              \
  FLASHDJL_PAGED_PREFILL(bf16, __nv_bfloat16, D, VNAME, VAR)

FLASHDJL_PAGED_PREFILL_DT(64, causal, kCausal)
FLASHDJL_PAGED_PREFILL_DT(64, general, kGeneral)
FLASHDJL_PAGED_PREFILL_DT(128, causal, kCausal)
FLASHDJL_PAGED_PREFILL_DT(128, general, kGeneral)
