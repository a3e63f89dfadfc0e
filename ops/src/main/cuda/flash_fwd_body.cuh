// FlashDJL: the FA2 forward kernel body (mma.sync m16n8k16) shared by the dense/varlen flash kernels
// (flash_fwd.cu, FlashFwdParams) and the paged prefill kernels (paged_prefill.cu, PagedPrefillParams): one
// implementation, instantiated by each file with its parameter block. Launch conventions and semantics are in
// those files' headers.
//
// Design (per CTA: one query block of Br rows of one (batch, head)):
//   * 4 warps; warp w owns query rows [w*Br/4, (w+1)*Br/4) = kMT slabs of 16 rows, so all
//     softmax row reductions are quad shuffles inside the warp.
//   * Q tile stays in shared memory ([Br][D+8]); K and V tiles ([Bc][D+8]) are loaded with
//     16-byte cp.async. The +8 element pad makes every ldmatrix 8x8 phase conflict-free.
//   * Pipeline (FA2): wait K(n) -> issue V(n) -> S = Q K^T -> wait V(n) -> issue K(next)
//     -> online softmax -> O += P V. Two CTAs per SM hide the remaining latency.
//   * Key tiles are walked from the last to the first, so the (few) tiles that need masking
//     come first; fully invisible tiles (causal / window) are never loaded.
//   * Scores stay raw (q.k) in the plain/causal kernels and softmax uses exp2 with
//     scale*log2(e) folded into one FFMA; the general kernel converts each score to its final
//     value in log2 units (scale, softcap, alibi, mask) and then uses factor 1.
// ---------------------------------------------------------------------------------------------

#pragma once

#include "flash_params.h"
#include "paged_prefill_params.h"
#ifndef FLASHDJL_HOST_EMULATION
#include "ptx.cuh"  // the real PTX helpers (the emulation test brings its own, below)
#endif
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

namespace flashdjl {

// ----------------------------------- kernel traits -------------------------------------------
template <int D_, int Br_, int Bc_, int NW_, int MinBlocks_>
struct Traits {
  static constexpr int D = D_;            // head dim
  static constexpr int Br = Br_;          // query rows per CTA
  static constexpr int Bc = Bc_;          // keys per tile
  static constexpr int kWarps = NW_;
  static constexpr int kThreads = NW_ * 32;
  static constexpr int kMinBlocks = MinBlocks_;
  static constexpr int kWarpRows = Br / kWarps;   // rows owned by one warp
  static constexpr int kMT = kWarpRows / 16;      // 16-row mma slabs per warp
  static constexpr int kNT = Bc / 8;              // n8 tiles of S per slab
  static constexpr int kDT = D / 8;               // n8 tiles of O per slab
  static constexpr int kKQ = D / 16;              // k16 steps of S = Q K^T
  static constexpr int kKP = Bc / 16;             // k16 steps of O += P V
  static constexpr int kStride = D + 8;           // smem row pitch in elements (pad = 16 B)
  static constexpr int kCPR = D / 8;              // 16-byte chunks per row
  static constexpr int kSmemQ = Br * kStride;     // elements: sQ [Br][kStride] (reused as sO)
  static constexpr int kSmemKV = Bc * kStride;    // elements: sK, sV [Bc][kStride] each
  static constexpr int kSmemBytes = (kSmemQ + 2 * kSmemKV) * 2;
  static_assert(kWarpRows % 16 == 0, "warp rows must be a multiple of 16");
  static_assert(Bc % 16 == 0 && D % 16 == 0, "tile shape");
  static_assert(kNT % 2 == 0 && kDT % 2 == 0, "x4 ldmatrix loads two n8 tiles");
};

// Per head dim configuration. Register budget per thread (fp32 accumulators):
//   O: kMT*kDT*4, S: kMT*kNT*4  (hd128: 128 + 64).
template <int D> struct TraitsFor;
template <> struct TraitsFor<32>  : Traits<32, 128, 128, 4, 2> {};
template <> struct TraitsFor<64>  : Traits<64, 128, 64, 4, 2> {};
template <> struct TraitsFor<96>  : Traits<96, 128, 64, 4, 2> {};
template <> struct TraitsFor<128> : Traits<128, 128, 64, 4, 2> {};
template <> struct TraitsFor<192> : Traits<192, 64, 64, 4, 2> {};
template <> struct TraitsFor<256> : Traits<256, 64, 64, 4, 2> {};

// ----------------------------------- PTX helpers ---------------------------------------------
// FLASHDJL_HOST_EMULATION (test only, ops/src/test/cuda/emu/) names a header that provides the
// same helpers for a CPU emulation of the kernel (threads as OS threads, warp collectives
// emulated lane by lane); it is never used by the real build.
#ifdef FLASHDJL_HOST_EMULATION
#include FLASHDJL_HOST_EMULATION
#endif  // FLASHDJL_HOST_EMULATION

// The semantics (mask / score rule, tile ranges) shared with flash_fwd_sm90.cu.
#include "flash_common.cuh"

// --------------------------------------- tile loader -----------------------------------------
// Copies rows [row0, row0 + kRows) of a [*, D] global matrix (row pitch `stride` elements) into
// smem [kRows][kStride]; rows >= row_limit, and rows the keep predicate refuses, are zero-filled and never
// read from global memory.
// Thread -> chunk mapping: kTPR (power of two >= kCPR) threads per row, thread tid copies chunk
// (tid % kTPR) of rows (tid / kTPR) + it * kRPI; threads with chunk >= kCPR idle (hd 96/192).
template <class Tr, int kRows, typename T, class Keep = KeepAllRows>
__device__ __forceinline__ void load_tile(T* s, const T* g, int64_t stride, int row0,
                                          int row_limit, int tid, Keep keep = Keep()) {
  constexpr int kTPR = Tr::kCPR <= 4 ? 4 : Tr::kCPR <= 8 ? 8 : Tr::kCPR <= 16 ? 16 : 32;
  constexpr int kRPI = Tr::kThreads / kTPR;
  static_assert(kRows % kRPI == 0, "tile rows must be a multiple of rows per pass");
  const int ch = tid % kTPR, r0 = tid / kTPR;
  if (kTPR != Tr::kCPR && ch >= Tr::kCPR) return;
  stride = opaque(stride);
  const T* tile = g + static_cast<int64_t>(row0) * stride + ch * 8;
  const uint32_t dst = smem_addr(s + r0 * Tr::kStride + ch * 8);
#pragma unroll
  for (int it = 0; it < kRows / kRPI; ++it) {
    const int r = r0 + it * kRPI;
    const bool ok = row0 + r < row_limit && keep(row0 + r);
    cp_async_16(dst + it * kRPI * Tr::kStride * 2, tile + (ok ? r * stride : 0), ok);
  }
}

// The same tile from a K/V page pool (paged_prefill.cu): local token t = row0 + r of the sequence
// lives at slot pages[t / page_size] * page_size + t % page_size of the pool (row pitch `stride`,
// `pool` already offset to the kv head); rows >= row_limit (and rows keep refuses) are zero-filled and never
// read, so unused pages are never touched. Any page size >= 1 works (a tile may straddle pages).
template <class Tr, int kRows, typename T, class Keep = KeepAllRows>
__device__ __forceinline__ void load_paged_tile(T* s, const T* pool, const int32_t* pages,
                                                int page_size, int64_t stride, int row0,
                                                int row_limit, int tid, Keep keep = Keep()) {
  constexpr int kTPR = Tr::kCPR <= 4 ? 4 : Tr::kCPR <= 8 ? 8 : Tr::kCPR <= 16 ? 16 : 32;
  constexpr int kRPI = Tr::kThreads / kTPR;
  static_assert(kRows % kRPI == 0, "tile rows must be a multiple of rows per pass");
  const int ch = tid % kTPR, r0 = tid / kTPR;
  if (kTPR != Tr::kCPR && ch >= Tr::kCPR) return;
  const T* base = pool + ch * 8;
  const uint32_t dst = smem_addr(s + r0 * Tr::kStride + ch * 8);
#pragma unroll
  for (int it = 0; it < kRows / kRPI; ++it) {
    const int t = row0 + r0 + it * kRPI;
    const bool ok = t < row_limit && keep(t);
    int64_t slot = 0;
    if (ok) slot = static_cast<int64_t>(__ldg(pages + t / page_size)) * page_size + t % page_size;
    cp_async_16(dst + it * kRPI * Tr::kStride * 2, base + slot * stride, ok);
  }
}

// Which parameter block a kernel body reads: FlashFwdParams (dense / varlen K/V) or
// PagedPrefillParams (K/V from page pools, queries packed by qo_indptr).
template <class P> struct IsPaged { static constexpr bool value = false; };
template <> struct IsPaged<PagedPrefillParams> { static constexpr bool value = true; };

// ----------------------------------------- kernel body ---------------------------------------
// Positions (mask_params.h): the sequence's keys are local 0..Lk-1 (global key mask.key_offset + j; paged:
// the seq_lens[b] paged tokens); query i sits at local position Lk - Lq + i, plus mask.query_shift in the
// positioned variant; so the one rule applies unchanged with the sink bound shifted by key_offset (causal,
// windows and ALiBi depend only on pos - j). The general variant reads the offsets only when paged (key
// offset), the plain and causal variants not at all: the launcher sends calls whose positions change the
// result to the positioned variant.
template <class Tr, typename T, int kVariant, class P = FlashFwdParams>
__device__ __forceinline__ void flash_fwd_body(const P& p) {
  constexpr bool kPaged = IsPaged<P>::value;
  using M = Mma<T>;
  constexpr int kMT = Tr::kMT, kNT = Tr::kNT, kDT = Tr::kDT, Br = Tr::Br, Bc = Tr::Bc;
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kLn2 = 0.6931471805599453f;

  FLASHDJL_DYNAMIC_SMEM(smem_raw);
  T* sQ = reinterpret_cast<T*>(smem_raw);  // [Br][kStride]; the epilogue reuses it as sO
  T* sK = sQ + Tr::kSmemQ;                 // [Bc][kStride]
  T* sV = sK + Tr::kSmemKV;                // [Bc][kStride]

  if (p.head_dim != Tr::D) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;  // mma fragment coordinates
  constexpr bool kAllOptions = kVariant == kGeneral || kVariant == kPositioned;  // every option of the params
  const bool causal_order = kVariant == kCausal || (kAllOptions && p.mask.causal != 0);
  const int m_block = causal_order ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heavy first
  const int h = blockIdx.y, b = blockIdx.z;
  const int hk = h / (p.hq / p.hkv);

  // ---- sequence geometry (dense or varlen, each side independently; paged: packed q) ----
  bool varlen_q, varlen_k;
  int lq = p.lq, lk, q0 = 0, k0 = 0;  // q0/k0: first packed row of this sequence
  const T *gQ, *gK, *gV;
  const int32_t* pages = nullptr;  // paged: this sequence's page ids
  if constexpr (kPaged) {
    varlen_q = true;
    varlen_k = false;
    q0 = p.qo_indptr[b];
    lq = p.qo_indptr[b + 1] - q0;
    lk = p.seq_lens[b];
    gQ = static_cast<const T*>(p.q) + q0 * p.q_row_stride + h * p.q_head_stride;
    gK = static_cast<const T*>(p.k_pages) + hk * p.kv_head_stride;
    gV = static_cast<const T*>(p.v_pages) + hk * p.kv_head_stride;
    pages = p.page_indices + p.page_indptr[b];
  } else {
    const SeqGeometry s = seq_geometry(p, b);
    varlen_q = s.varlen_q;
    varlen_k = s.varlen_k;
    lq = s.lq;
    lk = s.lk;
    q0 = s.q0;
    k0 = s.k0;
  }
  // element offset of (sequence b, row 0, head) in a tensor with these strides
  const int m0 = m_block * Br;
  if (m0 >= lq) return;
  const int m_end = min(m0 + Br, lq);

  if constexpr (!kPaged) {
    gQ = static_cast<const T*>(p.q) +
         seq_offset(varlen_q, b, q0, h, p.q_batch_stride, p.q_head_stride, p.q_row_stride);
    gK = static_cast<const T*>(p.k) +
         seq_offset(varlen_k, b, k0, hk, p.k_batch_stride, p.k_head_stride, p.k_row_stride);
    gV = static_cast<const T*>(p.v) +
         seq_offset(varlen_k, b, k0, hk, p.v_batch_stride, p.v_head_stride, p.v_row_stride);
  }
  // K / V tile n (rows n*Bc.. of this sequence's keys) into smem
  auto load_k = [&](int n) {
    if constexpr (kPaged) {
      load_paged_tile<Tr, Bc>(sK, gK, pages, p.page_size, p.kv_row_stride, n * Bc, lk, tid);
    } else {
      load_tile<Tr, Bc>(sK, gK, p.k_row_stride, n * Bc, lk, tid);
    }
  };

  const MaskRule rule = flash_rule<kVariant>(p.mask, lk, lq, kPaged);
  const TileRange range = tile_range<Bc>(rule, m0, m_end);
  // V tile n; with the options that hide keys inside [0, Lk) (window, sinks), values no row of the block sees
  // are zero-filled instead of read (plain/causal: every key of [0, Lk) is seen by the call's last query)
  auto load_v = [&](int n) {
    if constexpr (kAllOptions) {
      const KeepVisibleRows keep{rule, m0 + rule.off, m_end - 1 + rule.off};
      if constexpr (kPaged) {
        load_paged_tile<Tr, Bc>(sV, gV, pages, p.page_size, p.kv_row_stride, n * Bc, lk, tid, keep);
      } else {
        load_tile<Tr, Bc>(sV, gV, p.v_row_stride, n * Bc, lk, tid, keep);
      }
    } else if constexpr (kPaged) {
      load_paged_tile<Tr, Bc>(sV, gV, pages, p.page_size, p.kv_row_stride, n * Bc, lk, tid);
    } else {
      load_tile<Tr, Bc>(sV, gV, p.v_row_stride, n * Bc, lk, tid);
    }
  };

  // softmax factor: raw q.k -> log2 units (plain/causal); general scores are final log2 units.
  const float sc = kAllOptions ? 1.f : p.mask.scale * kLog2e;
  const float slope = (kAllOptions && p.alibi_slopes != nullptr) ? p.alibi_slopes[h] : 0.f;

  // ---- per-lane ldmatrix base addresses (bytes, shared window) ----
  const int warp_row0 = warp * Tr::kWarpRows;
  // A = Q slab rows (l%16), cols 8*(l/16)
  const uint32_t q_lane =
      smem_addr(sQ + (warp_row0 + (lane & 15)) * Tr::kStride + (lane >> 4) * 8);
  // B = K^T: keys (l%8) + 8*(l/16), dims 8*((l/8)%2)
  const uint32_t k_lane =
      smem_addr(sK + ((lane & 7) + ((lane >> 4) << 3)) * Tr::kStride + ((lane >> 3) & 1) * 8);
  // B = V (trans): keys (l%16), dims 8*(l/16)
  const uint32_t v_lane = smem_addr(sV + (lane & 15) * Tr::kStride + (lane >> 4) * 8);

  // ---- register tiles ----
  float acc_o[kMT][kDT][4];  // O slab: rows (g, g+8) of each 16-row slab x D
  float row_m[kMT][2];       // running max (raw units; log2 units for general)
  float row_l[kMT][2];       // running sum of exp2, thread-partial (quad-reduced at the end)
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_o[mt][dt][e] = 0.f;
    row_m[mt][0] = row_m[mt][1] = -INFINITY;
    row_l[mt][0] = row_l[mt][1] = 0.f;
  }

  int n = range.first();
  if (n >= 0) {
    load_tile<Tr, Br>(sQ, gQ, p.q_row_stride, m0, lq, tid);
    load_k(n);
    cp_async_commit();
  }

  for (; n >= 0;) {
    const int n_next = range.next(n);

    cp_async_wait_all();
    __syncthreads();  // K(n) (and Q) landed; every warp finished reading V(previous)
    load_v(n);
    cp_async_commit();

    // ---- S[kMT][kNT] (16x8 fp32 tiles) = Q_slab K(n)^T ----
    float s[kMT][kNT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < Tr::kKQ; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
        ldsm_x4(a[mt], q_lane + (mt * 16 * Tr::kStride + kk * 16) * 2);
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t bk[4];  // [n-tile 2np: b0 b1][n-tile 2np+1: b0 b1]
        ldsm_x4(bk, k_lane + (np * 16 * Tr::kStride + kk * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          M::run(s[mt][2 * np], a[mt], bk[0], bk[1]);
          M::run(s[mt][2 * np + 1], a[mt], bk[2], bk[3]);
        }
      }
    }

    // ---- scores: mask (plain/causal: only tiles that need it) or full transform (general) ----
    if (kAllOptions || !tile_all_visible<Bc>(rule, n, m0, m_end)) {
      // computed inside the loop on purpose: hoisted per-row bounds would pin registers
      const int pos0 = opaque(m0 + warp_row0 + g + rule.off);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int pos = pos0 + mt * 16 + hh * 8;
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int j = n * Bc + nt * 8 + 2 * t4 + e;
              float& x = s[mt][nt][2 * hh + e];
              if (kAllOptions) {
                x = key_visible(rule, pos, j)
                        ? transform_score_l2(x, p.mask.scale, p.mask.softcap, slope, pos, j)
                        : -INFINITY;
              } else {
                x = key_visible(rule, pos, j) ? x : -INFINITY;
              }
            }
        }
    }

    cp_async_wait_all();
    __syncthreads();  // V(n) landed; every warp finished reading K(n)
    if (n_next >= 0) {
      load_k(n_next);
      cp_async_commit();
    }

    // ---- online softmax: rows (mt, hh); P overwrites S ----
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = row_m[mt][hh];
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
          mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hh], s[mt][nt][2 * hh + 1]));
        mx = quad_max(mx);
        const float ms = mx == -INFINITY ? 0.f : mx * sc;  // all-masked row: keep exp2(-inf)=0
        const float corr = fast_exp2(row_m[mt][hh] * sc - ms);
        row_m[mt][hh] = mx;
        float sum = row_l[mt][hh] * corr;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt) {
          acc_o[mt][dt][2 * hh] *= corr;
          acc_o[mt][dt][2 * hh + 1] *= corr;
        }
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pv = fast_exp2(s[mt][nt][2 * hh + e] * sc - ms);
            s[mt][nt][2 * hh + e] = pv;
            sum += pv;
          }
        row_l[mt][hh] = sum;
      }

    // ---- O[kMT][kDT] += P[kMT][Bc] V(n) ----
#pragma unroll
    for (int kp = 0; kp < Tr::kKP; ++kp) {
      uint32_t a[kMT][4];  // P as the A operand: S tiles 2kp (cols 0-7) and 2kp+1 (cols 8-15)
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        a[mt][0] = M::pack(s[mt][2 * kp][0], s[mt][2 * kp][1]);
        a[mt][1] = M::pack(s[mt][2 * kp][2], s[mt][2 * kp][3]);
        a[mt][2] = M::pack(s[mt][2 * kp + 1][0], s[mt][2 * kp + 1][1]);
        a[mt][3] = M::pack(s[mt][2 * kp + 1][2], s[mt][2 * kp + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kDT / 2; ++dp) {
        uint32_t bv[4];  // [d-tile 2dp: b0 b1][d-tile 2dp+1: b0 b1]
        ldsm_x4_trans(bv, v_lane + (kp * 16 * Tr::kStride + dp * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          M::run(acc_o[mt][2 * dp], a[mt], bv[0], bv[1]);
          M::run(acc_o[mt][2 * dp + 1], a[mt], bv[2], bv[3]);
        }
      }
    }
    n = n_next;
  }

  // ---- epilogue: normalize, LSE, O via smem (sQ rows of this warp) with 16-byte stores ----
  cp_async_wait_all();
  __syncthreads();
  // (output offsets are computed only here so that they hold no registers during the loop)
  // (this exact form keeps the hd128 register allocation of the row-stride-1 epilogue: no extra spills)
  int64_t lse_off, lse_rs = p.lse_row_stride;  // lse element of row r: lse_off + r * lse_rs
  if constexpr (kPaged) {
    lse_off = q0 * lse_rs + h;
  } else {
    lse_off = varlen_q ? h * p.lse_head_stride + q0 * lse_rs : b * p.lse_batch_stride + h * p.lse_head_stride;
  }
  T* sO = sQ;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float l = quad_sum(row_l[mt][hh]);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int r = warp_row0 + mt * 16 + g + hh * 8;
      if (p.lse != nullptr && t4 == 0 && m0 + r < lq) {
        p.lse[lse_off + (m0 + r) * lse_rs] =
            l > 0.f ? (row_m[mt][hh] * sc + fast_log2(l)) * kLn2 : -INFINITY;
      }
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        *reinterpret_cast<uint32_t*>(sO + r * Tr::kStride + dt * 8 + 2 * t4) =
            M::pack(acc_o[mt][dt][2 * hh] * inv, acc_o[mt][dt][2 * hh + 1] * inv);
      }
    }
  __syncwarp();
  T* gO;
  if constexpr (kPaged) {
    gO = static_cast<T*>(p.o) + q0 * p.o_row_stride + h * p.o_head_stride;
  } else {
    gO = static_cast<T*>(p.o) +
         seq_offset(varlen_q, b, q0, h, p.o_batch_stride, p.o_head_stride, p.o_row_stride);
  }
  constexpr int kChunks = Tr::kWarpRows * Tr::kCPR;
#pragma unroll
  for (int c = lane; c < kChunks; c += 32) {
    const int r = c / Tr::kCPR, ch = c % Tr::kCPR;
    const int row = m0 + warp_row0 + r;
    if (row < lq) {
      *reinterpret_cast<uint4*>(gO + static_cast<int64_t>(row) * p.o_row_stride + ch * 8) =
          *reinterpret_cast<const uint4*>(sO + (warp_row0 + r) * Tr::kStride + ch * 8);
    }
  }
}

}  // namespace flashdjl
