// FlashDJL paged decode kernels: one query token per sequence against K/V pages (NHD pools),
// GQA-grouped on tensor cores, with split-KV (flash-decoding).
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by org.flashdjl.ops.cuda.PagedDecodeKernel):
//   kernel  paged_decode_{fp16|bf16}_hd{64|128|256}_{plain|general}(PagedDecodeParams), and at hd 128 also
//           ..._{plain|general}_wide (8 warps a CTA, DecodeWideTraits128): the launcher takes it when the grid
//           has at most one CTA per SM; ..._wide_pair (sm_90, clusters of 2 CTAs) when that grid has 2 splits
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, dynamicSmemBytes, 16 (max group),
//           16 (tokens per tile)}
//   grid  = (num_splits, hkv, batch). CTA (s, h, b) attends query heads [h*G, (h+1)*G) of
//   sequence b (G = hq / hkv <= 16) over its share of the (sequence, kv head) row's tiles (below).
//   num_splits == 1: writes o (q's dtype) and lse; else each CTA writes fp32 partial_o /
//   partial_lse (a split without keys: partial_lse = -inf, o = 0) and the CTA that finishes its
//   (sequence, kv head) last (split_counters, atomics) merges the row's splits into o / lse with
//   merge_state.cu's rule and re-zeroes the counter: one launch, no merge kernel.
//   plain   : no window / sinks / ALiBi / softcap (causal and right windows are no-ops here);
//   general : every option from params through flash_common.cuh's key_visible/transform_score_l2.
//
// Semantics: the query of sequence b is its last token, global position
//   pos = key_offset + len_b - 1; paged token t is global key key_offset + t; keys are masked by
//   key_visible() and scored by transform_score_l2() of flash_common.cuh (the library's one rule).
//   LSE natural log fp32; a sequence with no visible key writes o = 0, lse = -inf.
//
// Design (per CTA: NW = Traits::kWarps warps (4; 8 in the _wide kernels, 2 in hd 256 _compact), one kv head, G
//   query heads):
//   * The G query rows sit in a 16-row mma slab (rows >= G are zero): S = Q K^T and O += P V are
//     m16n8k16 mma.sync with K / V tiles of 16 tokens in shared memory, so each K/V byte of the
//     kv head is read from HBM exactly once for all G heads.
//   * The row's visible tiles are dealt to its num_splits * NW warps in units of kUnit (8; 4 in _wide)
//     consecutive tiles, round-robin: warp w of CTA s takes units NW s + w, then every (NW num_splits)-th. Each
//     warp keeps its own online-softmax state; a kStages-deep cp.async ring per warp (only __syncwarp in the main
//     loop) keeps (kStages - 1) * 8 KiB (hd128) of loads in flight per warp; the copies ask L2 for whole 128-byte
//     lines, evicted first (ptx.cuh's cp_async_16_stream: +3-4 points of the copy rate, runs 66-68). Page ids for the
//     tile after next are loaded one iteration early (one id per lane, shared by shuffles), so the
//     page-table lookup never sits on the load path; any page size 1..256 works (a tile may
//     straddle pages).
//   * Invisible tokens (tail of the sequence, left window) are zero-filled by cp.async without a
//     global read and masked to -inf; fully invisible tiles (outside [sinks) u [window, len)) are
//     never visited. Unused pool pages are never read.
//   * The NW warp states are merged through shared memory at the end (same merge rule as
//     merge_state.cu).
// Requirements (checked by the Java launcher): 16-byte aligned q/o/pools, strides multiples of 8
// elements, head-dim stride 1, hq % hkv == 0, hq / hkv <= 16.
// ---------------------------------------------------------------------------------------------

#include "paged_params.h"
#ifndef FLASHDJL_HOST_EMULATION
#include "ptx.cuh"  // the real PTX helpers (the CPU emulation test brings its own, below)
#endif
// The _wide_pair kernels (thread block clusters) exist in the sm_90 device pass and the host pass, not in the sm_80 /
// compute_80 ones (nvcc refuses __cluster_dims__ there) nor in the CPU emulation test.
#if !defined(FLASHDJL_HOST_EMULATION) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900)
#define FLASHDJL_DECODE_PAIR 1
#include <cooperative_groups.h>
#else
#define FLASHDJL_DECODE_PAIR 0
#endif
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <float.h>
#include <stdint.h>

namespace flashdjl {

// FLASHDJL_HOST_EMULATION (test only, ops/src/test/cuda/emu/) names the header with the CPU emulation of the PTX
// helpers (threads as OS threads, warp collectives lane by lane); never used by the real build.
#ifdef FLASHDJL_HOST_EMULATION
#include FLASHDJL_HOST_EMULATION
#endif

// The semantics (mask / score rule) shared with the flash kernels.
#include "flash_common.cuh"

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int D_, int Stages_, int Warps_, int Unit_>
struct DecodeTraits {
  static constexpr int D = D_;
  static constexpr int kStages = Stages_;
  static constexpr int kWarps = Warps_;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMinBlocks = 8 / kWarps;       // __launch_bounds__: 4 warps -> 2 CTAs an SM, 8 warps -> 1
  static constexpr int kTile = 16;                    // tokens per tile
  static constexpr int kUnit = Unit_;                 // consecutive tiles a warp takes at a time
  static constexpr int kStride = D + 8;               // smem row pitch (elements): conflict-free ldmatrix
  static constexpr int kCPR = D / 8;                  // 16-byte chunks per row
  static constexpr int kTileElems = kTile * kStride;  // one K or V tile
  static constexpr int kStageElems = 2 * kTileElems;  // K + V
  static constexpr int kSmemQ = 16 * kStride;
  static constexpr int kSmemBytes = (kSmemQ + kWarps * kStages * kStageElems) * 2;
  // the warps' merge area sO [w][16][kOStride] fp32: rows 16 bytes apart, so a warp's float2 writes of its 8 rows
  // (g = lane / 4) spread over all 32 banks; with a pitch of D they shared one 8-bank window, and the merging CTA's
  // writes took ~1.3 us of the launch's tail (run 102's trace; +0.2-1.0 points of the copy rate)
  static constexpr int kOStride = D + 4;
  static constexpr int kMergeBytes = kWarps * 16 * (kOStride + 2) * 4;  // O [w][16][kOStride] + m, l [w][16]
  static_assert(kMergeBytes <= kWarps * kStages * kStageElems * 2, "merge area must fit the ring");
  static_assert((kTile * kCPR) % 32 == 0, "whole chunks per lane");
};
template <int D> struct DecodeTraitsFor;
template <> struct DecodeTraitsFor<64> : DecodeTraits<64, 4, 4, 8> {};
template <> struct DecodeTraitsFor<128> : DecodeTraits<128, 3, 4, 8> {};
template <> struct DecodeTraitsFor<256> : DecodeTraits<256, 2, 4, 8> {};
// The `_wide` hd 128 kernels: 8 warps of 2 ring stages (143 KB of shared memory, one CTA an SM) dealt units of 4
// tiles. For a grid of at most one CTA an SM (the planner's split plans: 1 x 64k / 16 splits, 8 x 16k / 2, 4 x 32k / 4,
// 16 x 8k / 1) two warps a scheduler hide each other's tile math: 1.4-2.6 points of the copy rate above the 4-warp
// kernel (docs/PERF.md, runs 92-94); with more CTAs than SMs the 4-warp kernel, two CTAs an SM, overlaps one CTA's
// start and end with the other's stream and is ahead (128 x 2k: 95.9 against 92.2 %). The launcher picks by grid size.
struct DecodeWideTraits128 : DecodeTraits<128, 2, 8, 4> {};
// The _wide_pair kernels' dynamic shared memory: the _wide ring, then the slot [16][D] + [16] fp32 into which the peer
// CTA of the cluster writes its state for the items this CTA merges (beyond the ring: the peer's pushes can never land
// in a ring this CTA still streams into).
constexpr int kPairPeerBytes = 16 * (DecodeWideTraits128::D + 1) * 4;
constexpr int kPairSmemBytes = DecodeWideTraits128::kSmemBytes + kPairPeerBytes;
// The `_compact` hd 128 / 256 kernels, for GPUs whose CTAs may take at most 99 KB of dynamic shared memory (compute
// capability 8.6, 8.9, 12.x: RTX / A10 / L4 / L40 class), where the kernels above (108.8 / 143.6 KB) cannot launch:
// 2 ring stages a warp, hd 256 with 2 warps a CTA. The launcher takes them only when the device (or the caller's
// limit) leaves no room for the others; numerics and semantics are the same kernel's.
template <int D> struct DecodeCompactTraitsFor;
template <> struct DecodeCompactTraitsFor<128> : DecodeTraits<128, 2, 4, 8> {};
template <> struct DecodeCompactTraitsFor<256> : DecodeTraits<256, 2, 2, 8> {};
// Dynamic shared memory of every kernel form, in bytes: PagedDecodeKernel.SHARED_MEMORY mirrors these numbers to pick a
// form that fits the device, and PagedDecodeKernelTest reads them from here.
static_assert(DecodeTraitsFor<64>::kSmemBytes == 76032, "PagedDecodeKernel.SHARED_MEMORY hd64");
static_assert(DecodeTraitsFor<128>::kSmemBytes == 108800, "PagedDecodeKernel.SHARED_MEMORY hd128");
static_assert(DecodeTraitsFor<256>::kSmemBytes == 143616, "PagedDecodeKernel.SHARED_MEMORY hd256");
static_assert(DecodeWideTraits128::kSmemBytes == 143616, "PagedDecodeKernel.SHARED_MEMORY hd128_wide");
static_assert(kPairSmemBytes == 151872, "PagedDecodeKernel.SHARED_MEMORY hd128_wide_pair");
static_assert(DecodeCompactTraitsFor<128>::kSmemBytes == 73984, "PagedDecodeKernel.SHARED_MEMORY hd128_compact");
static_assert(DecodeCompactTraitsFor<256>::kSmemBytes == 76032, "PagedDecodeKernel.SHARED_MEMORY hd256_compact");

// Four fp32 values of an output row in q's dtype T, stored as one 8-byte write (out is 8-byte aligned).
template <typename T>
__device__ __forceinline__ void store_out4(T* out, float x, float y, float z, float w) {
  union { T h[4]; uint2 u; } pk;
  pk.h[0] = Mma<T>::from(x);
  pk.h[1] = Mma<T>::from(y);
  pk.h[2] = Mma<T>::from(z);
  pk.h[3] = Mma<T>::from(w);
  *reinterpret_cast<uint2*>(out) = pk.u;
}

// Split-KV epilogue: the CTA that finishes a (sequence b, kv head) row last merges the row's
// num_splits partial states of its G heads into o / lse, by merge_state.cu's rule (weights
// e^(lse_s - max); all -inf -> o = 0, lse = -inf), then re-zeroes the row's counter for the next
// launch. The partials of other CTAs are read through L2 (__ldcg); every split's partial o is
// written by its CTA (0 when it has no keys), so weight-0 splits add nothing.
// This merge is the tail of the launch (only the row's last CTA runs it), so it is built for latency: thread item
// (head r, 4 columns d); the kLanes lanes of one head (a shuffle segment) read that head's split LSEs kLanes at a
// time and pass each weight around by shuffles; the first kBatch partial rows are loaded with the LSEs, so a row of
// up to 16 splits costs one L2 round trip after the counter (docs/PERF.md, runs 101-106: the chain traced link by
// link).

template <typename T, int D>
__device__ __forceinline__ void merge_splits_if_last(const PagedDecodeParams& p, int b, int kvh,
                                                     int G, int tid, int threads) {
  constexpr int kItemsPerHead = D / 4;
  constexpr int kLanes = kItemsPerHead < 32 ? kItemsPerHead : 32;  // lanes of one head in a warp
  constexpr int kBatch = 16;                                        // partial o loads in flight per thread
  static_assert(kLanes % kBatch == 0, "a batch never wraps around the segment");
  __shared__ int s_last;
  // The row counter as a semaphore (CUTLASS's pattern): the barrier orders every thread's partial stores before
  // thread 0's acq_rel add, whose release makes them visible device-wide before the count does and whose acquire (the
  // last CTA's) orders the other CTAs' partials before this CTA's reads, through the next barrier. Two
  // __threadfence() a thread instead (runs 96-103) cost ~0.3 points of the copy rate at 1 x 64k.
  __syncthreads();
  if (tid == 0) {
    int* counter = p.split_counters + b * p.hkv + kvh;
    s_last = atomic_add_acq_rel_gpu(counter, 1) == p.num_splits - 1;
    if (s_last) *counter = 0;  // every CTA of the row has been counted
  }
  __syncthreads();
  if (!s_last) return;
  const int ns = p.num_splits, items = G * kItemsPerHead, sl = tid % kLanes;
  // every lane runs every pass (the shuffles need the whole warp); items past the end compute nothing they store.
  // items % kLanes == 0, so a segment is all valid or all past the end.
  for (int c0 = 0; c0 < items; c0 += threads) {
    const int c = c0 + tid;
    const bool valid = c < items;
    const int r = valid ? c / kItemsPerHead : 0, d = (c % kItemsPerHead) * 4;
    const int head = kvh * G + r;
    const float* lse_row = p.partial_lse + static_cast<int64_t>(b) * ns * p.hq + head;  // split s: + s * hq
    const float* o_row = p.partial_o + (static_cast<int64_t>(b) * ns * p.hq + head) * D + d;
    const int64_t o_step = static_cast<int64_t>(p.hq) * D;
    // The lane's first LSE (split sl) and the first kBatch partial rows are loaded together, before the max that
    // only the FMAs need: one L2 round trip, not a chain of dependent ones (+0.5 points at 1 x 64k, run 103).
    const int n0 = min(kLanes, ns);
    float4 x0[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      x0[k] = __ldcg(reinterpret_cast<const float4*>(o_row + (k < n0 ? k : 0) * o_step));
    }
    const float lse0 = sl < ns ? __ldcg(lse_row + static_cast<int64_t>(sl) * p.hq) : -INFINITY;
    float mx = lse0;
    for (int s = sl + kLanes; s < ns; s += kLanes) mx = fmaxf(mx, __ldcg(lse_row + static_cast<int64_t>(s) * p.hq));
    mx = segment_max<kLanes>(mx);
    const float mu = mx == -INFINITY ? 0.f : mx;  // every split empty: all weights 0
    float sum = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s0 = 0; s0 < ns; s0 += kLanes) {
      // lane sl holds the weight of split s0 + sl (0 for an empty split, whose o is 0, and past the end)
      const float wl =
          s0 + sl < ns ? expf((s0 == 0 ? lse0 : __ldcg(lse_row + static_cast<int64_t>(s0 + sl) * p.hq)) - mu) : 0.f;
      sum += wl;
      const int n = min(kLanes, ns - s0);
      // kBatch partial o loads are issued before the first FMA that needs one (a load per FMA would wait for
      // each L2 round trip in turn); a split past the end reads split s0's row again with weight 0.
      for (int k0 = 0; k0 < n; k0 += kBatch) {
        float4 x[kBatch];
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {
          x[k] = s0 == 0 && k0 == 0
                     ? x0[k]
                     : __ldcg(reinterpret_cast<const float4*>(o_row + (s0 + (k0 + k < n ? k0 + k : 0)) * o_step));
        }
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {
          const float w = __shfl_sync(0xffffffffu, wl, k0 + k, kLanes);  // 0 past n (wl = 0 there)
          acc.x = fmaf(w, x[k].x, acc.x);
          acc.y = fmaf(w, x[k].y, acc.y);
          acc.z = fmaf(w, x[k].z, acc.z);
          acc.w = fmaf(w, x[k].w, acc.w);
        }
      }
    }
    sum = segment_sum<kLanes>(sum);
    if (!valid) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    T* out = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.o_batch_stride +
             static_cast<int64_t>(head) * p.o_head_stride + d;
    store_out4(out, acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
    if (d == 0 && p.lse != nullptr) {
      p.lse[static_cast<int64_t>(b) * p.lse_batch_stride + head] = sum > 0.f ? mx + logf(sum) : -INFINITY;
    }
  }
}

#if FLASHDJL_DECODE_PAIR
// The _wide_pair kernels (sm_90, clusters of 2 CTAs, launched only with num_splits == 2): the row's two CTAs merge
// their states through distributed shared memory instead of the global partials, row counter and last-CTA merge
// (that chain costs 1.5 points of the copy rate at 8 x 16k; the pair merge gains 1.7-1.9 there, docs/PERF.md runs
// 99-100). Item c (head r, 4 columns d) is merged by the CTA of rank c & 1. Each CTA writes its normalized state of
// the items it merges to sSelf (its own shared memory) and of the others into the peer's sPeer slot (beyond the
// peer's ring), every LSE to both; after one cluster barrier each CTA merges from its own shared memory (run 107: +0.4
// at 8 x 16k against reading the peer's state remotely between two barriers). merge_state.cu's rule: weights
// e^(lse - max); both -inf -> o = 0, lse = -inf.
// sSelf / sSelfLse: [16][D] / [16] this CTA's state; sPeer / sPeerLse: the peer's, pushed before the barrier.
template <typename T, int D>
__device__ __forceinline__ void merge_pair(const PagedDecodeParams& p, int b, int kvh, int G, int tid, int threads,
                                           unsigned me, const float* sSelf, const float* sSelfLse, const float* sPeer,
                                           const float* sPeerLse) {
  cooperative_groups::this_cluster().sync();  // every push has landed; nobody touches the peer's memory after this
  for (int c = tid; c < G * (D / 4); c += threads) {
    if ((c & 1) != static_cast<int>(me)) continue;
    const int r = c / (D / 4), d = (c % (D / 4)) * 4;
    const float l0 = sSelfLse[r], l1 = sPeerLse[r];
    const float mx = fmaxf(l0, l1);
    const float mu = mx == -INFINITY ? 0.f : mx;
    const float w0 = expf(l0 - mu), w1 = expf(l1 - mu), sum = w0 + w1;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const float4 a = *reinterpret_cast<const float4*>(sSelf + r * D + d);
    const float4 x = *reinterpret_cast<const float4*>(sPeer + r * D + d);
    T* out = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.o_batch_stride +
             static_cast<int64_t>(kvh * G + r) * p.o_head_stride + d;
    store_out4(out, (w0 * a.x + w1 * x.x) * inv, (w0 * a.y + w1 * x.y) * inv, (w0 * a.z + w1 * x.z) * inv,
               (w0 * a.w + w1 * x.w) * inv);
    if (d == 0 && p.lse != nullptr) {
      p.lse[static_cast<int64_t>(b) * p.lse_batch_stride + kvh * G + r] = sum > 0.f ? mx + logf(sum) : -INFINITY;
    }
  }
}
#endif

// kPair: a _wide_pair kernel (num_splits == 2, a cluster of 2 CTAs a row; merge_pair instead of the global merge)
template <typename T, typename Tr, bool kGeneral, bool kPair = false>
__device__ __forceinline__ void paged_decode(const PagedDecodeParams& p, unsigned char* smem) {
  constexpr int D = Tr::D;
  constexpr int S = Tr::kStages;
  constexpr int NW = Tr::kWarps;
  constexpr int kChunksPerLane = Tr::kTile * Tr::kCPR / 32;
  constexpr int kRowsPerPass = 32 / Tr::kCPR > 0 ? 32 / Tr::kCPR : 1;  // rows one load pass covers
  if (p.head_dim != D) return;
  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
#if FLASHDJL_DECODE_PAIR
  // distributed shared memory may be written only once the peer CTA runs: arrive now, wait before the first push
  if constexpr (kPair) asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
  const int G = p.hq / p.hkv;
  const int len = p.seq_lens[b];
  const int pos = p.mask.key_offset + len - 1;  // global position of the query (the last token)

  T* sQ = reinterpret_cast<T*>(smem);
  T* sRing = sQ + Tr::kSmemQ + warp * S * Tr::kStageElems;

  // ---- query slab: rows [0, G) = heads kvh*G + r, rows >= G zero ----
  {
    const T* q = static_cast<const T*>(p.q) + static_cast<int64_t>(b) * p.q_batch_stride;
    for (int c = tid; c < 16 * Tr::kCPR; c += Tr::kThreads) {
      const int r = c / Tr::kCPR, ch = c % Tr::kCPR;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < G) {
        v = *reinterpret_cast<const uint4*>(q + static_cast<int64_t>(kvh * G + r) * p.q_head_stride +
                                            ch * 8);
      }
      *reinterpret_cast<uint4*>(sQ + r * Tr::kStride + ch * 8) = v;
    }
  }

  // ---- the row's tiles: the sequence [0, len) intersected with the visible keys ----
  const int t1 = len;       // local token indices; tiles of 16 tokens
  int lo = 0, sink_hi = 0;  // visible: [0, sink_hi) u [lo, len)
  if (kGeneral && p.mask.window_left >= 0) {
    lo = max(0, pos - p.mask.window_left - p.mask.key_offset);
    sink_hi = min(max(p.mask.sink_tokens - p.mask.key_offset, 0), lo);
  }
  // the visible tiles: [0, a1) (sinks), then [b0, b1) (the window, or everything)
  const int s_end = min(t1, sink_hi);
  const int a1 = s_end > 0 ? (s_end + 15) / 16 : 0;
  const int b0 = max(lo / 16, a1);
  const int b1 = max(t1 > lo ? (t1 + 15) / 16 : b0, b0);
  const int n_tiles = a1 + (b1 - b0);
  auto tile_at = [&](int i) { return i < a1 ? i : b0 + (i - a1); };

  // ---- the row's tiles are dealt to its warps in units of kUnit consecutive tiles ----
  // The row's num_splits * NW warps take the units round-robin: warp w of split s takes units s * NW + w, then
  // every (num_splits * NW)-th, so all CTAs of a row (and of its kv heads) sweep the sequence front to back
  // together; that streams 2-3 % faster than a contiguous chunk per CTA (docs/PERF.md, session 7). The order is
  // fixed: results are bitwise reproducible. ord_of(i): the ordinal of the warp's i-th tile (increasing in i).
  constexpr int kUnit = Tr::kUnit;
  const int first_unit = split * NW + warp, stride_units = p.num_splits * NW;
  auto ord_of = [&](int i) { return ((i / kUnit) * stride_units + first_unit) * kUnit + i % kUnit; };

  const T* kbase = static_cast<const T*>(p.k_pages) + static_cast<int64_t>(kvh) * p.kv_head_stride;
  const T* vbase = static_cast<const T*>(p.v_pages) + static_cast<int64_t>(kvh) * p.kv_head_stride;
  const int* pages = p.page_indices + p.page_indptr[b];

  // slot (page * page_size + row) of token tile*16 + lane of the warp's i-th tile for lanes < 16, -1 when past len
  auto slot_of = [&](int i) -> int {
    const int ord = ord_of(i);
    if (ord >= n_tiles || lane >= 16) return -1;
    const int t = tile_at(ord) * 16 + lane;
    if (t >= t1) return -1;
    const int page = __ldg(pages + t / p.page_size);
    return page * p.page_size + t % p.page_size;
  };
  // K / V rows are read once, in whole 128-byte lines: the copies ask L2 for whole lines, evicted first
  const uint64_t stream_policy = l2_evict_first_policy();
  auto issue = [&](int nth, int slot) {  // the warp's nth tile into ring stage nth % S
    T* sK = sRing + (nth % S) * Tr::kStageElems;
    T* sV = sK + Tr::kTileElems;
#pragma unroll
    for (int i = 0; i < kChunksPerLane; ++i) {
      const int c = lane + 32 * i;
      const int r = c / Tr::kCPR, ch = c % Tr::kCPR;
      const int sl = __shfl_sync(0xffffffffu, slot, r);
      const bool ok = sl >= 0;
      const int64_t off = static_cast<int64_t>(ok ? sl : 0) * p.kv_row_stride + ch * 8;
      cp_async_16_stream(smem_addr(sK + r * Tr::kStride + ch * 8), kbase + off, ok, stream_policy);
      cp_async_16_stream(smem_addr(sV + r * Tr::kStride + ch * 8), vbase + off, ok, stream_policy);
    }
  };
  (void)kRowsPerPass;

  // ---- per-warp online softmax state ----
  constexpr int kDT = D / 8;
  float o[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY};  // log2 units, rows g and g+8
  float l[2] = {0.f, 0.f};
  const int g = lane / 4, tq = lane % 4;
  float slope[2] = {0.f, 0.f};
  if (kGeneral && p.alibi_slopes != nullptr) {
    if (g < G) slope[0] = p.alibi_slopes[kvh * G + g];
    if (g + 8 < G) slope[1] = p.alibi_slopes[kvh * G + g + 8];
  }
  MaskRule rule;
  rule.lk = p.mask.key_offset + len;
  rule.off = 0;
  rule.causal = p.mask.causal != 0;
  rule.left = p.mask.window_left;
  rule.right = p.mask.window_right;
  rule.sinks = p.mask.sink_tokens;
  const float scale_log2 = p.mask.scale * kLog2e;

  __syncthreads();  // sQ ready

#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    const int sl = slot_of(s);
    if (ord_of(s) < n_tiles) issue(s, sl);
    cp_async_commit();
  }
  int next_slot = slot_of(S - 1);

  for (int it = 0; ord_of(it) < n_tiles; ++it) {
    if (ord_of(it + S - 1) < n_tiles) issue(it + S - 1, next_slot);
    cp_async_commit();
    next_slot = slot_of(it + S);
    cp_async_wait<S - 1>();
    __syncwarp();
    const T* sK = sRing + (it % S) * Tr::kStageElems;
    const T* sV = sK + Tr::kTileElems;
    const int tbase = tile_at(ord_of(it)) * 16;

    // S = Q K^T  (16 rows x 16 tokens)
    float sc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4], kb[4];
      ldsm_x4(a, smem_addr(sQ + ((lane & 7) + ((lane >> 3) & 1) * 8) * Tr::kStride + kk * 16 +
                           (lane >> 4) * 8));
      ldsm_x4(kb, smem_addr(sK + ((lane & 7) + (lane >> 4) * 8) * Tr::kStride + kk * 16 +
                            ((lane >> 3) & 1) * 8));
      Mma<T>::run(sc[0], a, kb[0], kb[1]);
      Mma<T>::run(sc[1], a, kb[2], kb[3]);
    }
    // scores in log2 units, masked
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int t = tbase + nt * 8 + 2 * tq + (e & 1);
        const int hh = e >> 1;
        float x;
        if (kGeneral) {
          const int j = p.mask.key_offset + t;
          x = (t < t1 && key_visible(rule, pos, j))
                  ? transform_score_l2(sc[nt][e], p.mask.scale, p.mask.softcap, slope[hh], pos, j)
                  : -INFINITY;
        } else {
          x = t < t1 ? sc[nt][e] * scale_log2 : -INFINITY;
        }
        sc[nt][e] = x;
        tile_max[hh] = fmaxf(tile_max[hh], x);
      }
    }
    float corr[2], m_use[2];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float mx = fmaxf(m[hh], quad_max(tile_max[hh]));
      m_use[hh] = mx == -INFINITY ? 0.f : mx;
      corr[hh] = fast_exp2(m[hh] - m_use[hh]);
      m[hh] = mx;
      l[hh] *= corr[hh];
    }
    uint32_t pa[4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float p0 = fast_exp2(sc[nt][0] - m_use[0]), p1 = fast_exp2(sc[nt][1] - m_use[0]);
      const float p2 = fast_exp2(sc[nt][2] - m_use[1]), p3 = fast_exp2(sc[nt][3] - m_use[1]);
      l[0] += p0 + p1;
      l[1] += p2 + p3;
      pa[2 * nt] = Mma<T>::pack(p0, p1);
      pa[2 * nt + 1] = Mma<T>::pack(p2, p3);
    }
#pragma unroll
    for (int i = 0; i < kDT; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }
    // O += P V
#pragma unroll
    for (int nd = 0; nd < D / 16; ++nd) {
      uint32_t vb[4];
      ldsm_x4_trans(vb, smem_addr(sV + ((lane & 7) + ((lane >> 3) & 1) * 8) * Tr::kStride + nd * 16 +
                                  (lane >> 4) * 8));
      Mma<T>::run(o[2 * nd], pa, vb[0], vb[1]);
      Mma<T>::run(o[2 * nd + 1], pa, vb[2], vb[3]);
    }
    __syncwarp();
  }
  cp_async_wait<0>();
  l[0] = quad_sum(l[0]);
  l[1] = quad_sum(l[1]);
  __syncthreads();  // every warp is done with its ring: reuse it for the merge

  // ---- merge the warps' states: sO [w][16][kOStride] fp32, sM / sL [w][16] ----
  constexpr int kOS = Tr::kOStride;
  float* sO = reinterpret_cast<float*>(smem + Tr::kSmemQ * 2);
  float* sM = sO + NW * 16 * kOS;
  float* sL = sM + NW * 16;
#pragma unroll
  for (int i = 0; i < kDT; ++i) {
    const int d = i * 8 + 2 * tq;
    // rows >= G are the slab's zero padding: nobody reads them (G = 4: a quarter of the writes)
    if (g < G) *reinterpret_cast<float2*>(sO + (warp * 16 + g) * kOS + d) = make_float2(o[i][0], o[i][1]);
    if (g + 8 < G) *reinterpret_cast<float2*>(sO + (warp * 16 + g + 8) * kOS + d) = make_float2(o[i][2], o[i][3]);
  }
  if (tq == 0) {
    sM[warp * 16 + g] = m[0];
    sM[warp * 16 + g + 8] = m[1];
    sL[warp * 16 + g] = l[0];
    sL[warp * 16 + g + 8] = l[1];
  }
  __syncthreads();
  const bool partial = p.num_splits > 1 && !kPair;
  // kPair: [16][D] this CTA's normalized state, then [16] its LSE (merge_pair's sSelf)
  [[maybe_unused]] float* sPair = sL + NW * 16;
#if FLASHDJL_DECODE_PAIR
  unsigned pair_me = 0;
  float* pair_peer = nullptr;  // the peer CTA's sPeer slot (distributed shared memory)
  if constexpr (kPair) {
    pair_me = cooperative_groups::this_cluster().block_rank();
    pair_peer = cooperative_groups::this_cluster().map_shared_rank(reinterpret_cast<float*>(smem + Tr::kSmemBytes),
                                                                   pair_me ^ 1u);
    asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");  // the peer has started
  }
#endif
  static_assert(!kPair || Tr::kMergeBytes + 16 * (D + 1) * 4 <= NW * S * Tr::kStageElems * 2,
                "the pair's state must fit the ring after the warps' merge area");
  static_assert(!kPair || kPairPeerBytes == 16 * (D + 1) * 4, "the peer slot holds [16][D] + [16] fp32");
  for (int c = tid; c < G * (D / 4); c += Tr::kThreads) {
    const int r = c / (D / 4), d = (c % (D / 4)) * 4;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, sM[w * 16 + r]);
    const float mu = mx == -INFINITY ? 0.f : mx;
    float sum = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int w = 0; w < NW; ++w) {
      const float f = fast_exp2(sM[w * 16 + r] - mu);
      sum += sL[w * 16 + r] * f;
      if (f != 0.f) {
        const float4 x = *reinterpret_cast<const float4*>(sO + (w * 16 + r) * kOS + d);
        acc.x += f * x.x;
        acc.y += f * x.y;
        acc.z += f * x.z;
        acc.w += f * x.w;
      }
    }
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    acc.x *= inv;
    acc.y *= inv;
    acc.z *= inv;
    acc.w *= inv;
    const float lse = sum > 0.f ? (mx + __log2f(sum)) * kLn2 : -INFINITY;
    const int head = kvh * G + r;
    if (kPair) {
#if FLASHDJL_DECODE_PAIR
      // the items this CTA merges stay here, the peer's go to its slot; both CTAs need every row's LSE
      float* dst = (c & 1) == static_cast<int>(pair_me) ? sPair : pair_peer;
      *reinterpret_cast<float4*>(dst + r * D + d) = acc;
      if (d == 0) {
        sPair[16 * D + r] = lse;
        pair_peer[16 * D + r] = lse;
      }
#endif
    } else if (partial) {
      const int64_t row = (static_cast<int64_t>(b) * p.num_splits + split) * p.hq + head;
      *reinterpret_cast<float4*>(p.partial_o + row * D + d) = acc;
      if (d == 0) p.partial_lse[row] = lse;
    } else {
      T* out = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.o_batch_stride +
               static_cast<int64_t>(head) * p.o_head_stride + d;
      store_out4(out, acc.x, acc.y, acc.z, acc.w);
      if (d == 0 && p.lse != nullptr) p.lse[static_cast<int64_t>(b) * p.lse_batch_stride + head] = lse;
    }
  }
  if (partial) merge_splits_if_last<T, D>(p, b, kvh, G, tid, Tr::kThreads);
#if FLASHDJL_DECODE_PAIR
  if constexpr (kPair) {
    const float* sPeer = reinterpret_cast<const float*>(smem + Tr::kSmemBytes);
    merge_pair<T, D>(p, b, kvh, G, tid, Tr::kThreads, pair_me, sPair, sPair + 16 * D, sPeer, sPeer + 16 * D);
  }
#endif
}

}  // namespace flashdjl

// TRAITS: the kernel's DecodeTraits; SUFFIX: "", _wide or _compact (kernel and _cfg names)
#define FLASHDJL_PAGED_DECODE(DTNAME, T, D, VNAME, GENERAL, TRAITS, SUFFIX)                       \
  extern "C" __global__ void __launch_bounds__(TRAITS::kThreads, TRAITS::kMinBlocks)              \
      paged_decode_##DTNAME##_hd##D##_##VNAME##SUFFIX(const PagedDecodeParams p) {               \
    FLASHDJL_DYNAMIC_SMEM(smem);                                                                 \
    flashdjl::paged_decode<T, TRAITS, GENERAL>(p, smem);                                          \
  }                                                                                              \
  extern "C" __device__ int paged_decode_##DTNAME##_hd##D##_##VNAME##SUFFIX##_cfg[4] = {        \
      TRAITS::kThreads, TRAITS::kSmemBytes, 16, 16};

#define FLASHDJL_PAGED_DECODE_DT(D, VNAME, GENERAL, TRAITS, SUFFIX)                  \
  FLASHDJL_PAGED_DECODE(fp16, __half, D, VNAME, GENERAL, TRAITS, SUFFIX)             \
  FLASHDJL_PAGED_DECODE(bf16, __nv_bfloat16, D, VNAME, GENERAL, TRAITS, SUFFIX)

FLASHDJL_PAGED_DECODE_DT(64, plain, false, flashdjl::DecodeTraitsFor<64>, )
FLASHDJL_PAGED_DECODE_DT(64, general, true, flashdjl::DecodeTraitsFor<64>, )
FLASHDJL_PAGED_DECODE_DT(128, plain, false, flashdjl::DecodeTraitsFor<128>, )
FLASHDJL_PAGED_DECODE_DT(128, general, true, flashdjl::DecodeTraitsFor<128>, )
FLASHDJL_PAGED_DECODE_DT(128, plain, false, flashdjl::DecodeWideTraits128, _wide)
FLASHDJL_PAGED_DECODE_DT(128, general, true, flashdjl::DecodeWideTraits128, _wide)
// the _wide_pair kernels: sm_90 only (thread block clusters); the launcher takes them on compute capability 9.x
#if FLASHDJL_DECODE_PAIR
#define FLASHDJL_PAGED_DECODE_PAIR(DTNAME, T, VNAME, GENERAL)                                            \
  extern "C" __global__ void __launch_bounds__(flashdjl::DecodeWideTraits128::kThreads, 1)                \
      __cluster_dims__(2, 1, 1) paged_decode_##DTNAME##_hd128_##VNAME##_wide_pair(const PagedDecodeParams p) { \
    FLASHDJL_DYNAMIC_SMEM(smem);                                                                         \
    flashdjl::paged_decode<T, flashdjl::DecodeWideTraits128, GENERAL, true>(p, smem);                    \
  }                                                                                                      \
  extern "C" __device__ int paged_decode_##DTNAME##_hd128_##VNAME##_wide_pair_cfg[4] = {                \
      flashdjl::DecodeWideTraits128::kThreads, flashdjl::kPairSmemBytes, 16, 16};
FLASHDJL_PAGED_DECODE_PAIR(fp16, __half, plain, false)
FLASHDJL_PAGED_DECODE_PAIR(bf16, __nv_bfloat16, plain, false)
FLASHDJL_PAGED_DECODE_PAIR(fp16, __half, general, true)
FLASHDJL_PAGED_DECODE_PAIR(bf16, __nv_bfloat16, general, true)
#endif
FLASHDJL_PAGED_DECODE_DT(256, plain, false, flashdjl::DecodeTraitsFor<256>, )
FLASHDJL_PAGED_DECODE_DT(256, general, true, flashdjl::DecodeTraitsFor<256>, )
// the _compact kernels: devices with at most 99 KB of shared memory a CTA (the launcher's fallback)
FLASHDJL_PAGED_DECODE_DT(128, plain, false, flashdjl::DecodeCompactTraitsFor<128>, _compact)
FLASHDJL_PAGED_DECODE_DT(128, general, true, flashdjl::DecodeCompactTraitsFor<128>, _compact)
FLASHDJL_PAGED_DECODE_DT(256, plain, false, flashdjl::DecodeCompactTraitsFor<256>, _compact)
FLASHDJL_PAGED_DECODE_DT(256, general, true, flashdjl::DecodeCompactTraitsFor<256>, _compact)
