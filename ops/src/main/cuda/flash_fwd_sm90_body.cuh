// FlashDJL: the Hopper (sm_90a) flash-attention forward kernel body, shared by flash_fwd_sm90.cu (dense / varlen
// K / V, FlashFwdSm90Params) and paged_prefill_sm90.cu (K / V from page pools, PagedPrefillSm90Params). The two differ
// only in the sequence geometry (seq_geometry overloads), the producer's K / V walk (the paged one has its own branch:
// page lookups, per-page TMA boxes; see paged_prefill_sm90.cu) and the Q / O / LSE base offsets.
//
// ---------------------------------------------------------------------------------------------
// Design (per CTA: one query block of Br = 64 kWG rows of one (batch, head); FlashAttention-3's
// warp specialisation, K / V loaded by TMA):
//   * 1 + kWG warpgroups: warpgroup 0 is the producer, 1 .. kWG the consumers; consumer c owns query
//     rows [64c, 64c + 64) (wgmma m64). Two consumers (384 threads, Br = 128): setmaxnreg gives the
//     producer 56 registers and each consumer 224; three (FlashTraitsFor's hd 64 plain / causal tile,
//     512 threads, Br = 192): 32 and 160.
//   * Q, K, V tiles live in shared memory in the canonical 128-byte-swizzle layout of wgmma:
//     a tile of R rows x D columns is stored as D/64 column blocks of [R][64] elements (128 B
//     rows); 16-byte chunk c of row r sits at chunk position c ^ (r % 8). K is the K-major B
//     operand of S = Q K^T; V, stored the same way ([keys][D], row-major), is the MN-major
//     ("transposed") B operand of O += P V. Whole K / V tiles of a sequence are loaded by TMA
//     (cp.async.bulk.tensor, D / 64 boxes of {64, Bc} per tile, the 128-byte swizzle done by the
//     copy engine, issued by one producer thread); the last, partial tile, value tiles with rows
//     the mask hides, Q, and every tile when params.tma == 0 go through 16-byte cp.async, rows
//     past the end (or hidden) zero-filled (src-size 0).
//   * The producer fills a ring of kStages K and kStages V slots; a slot's `full` mbarrier
//     (count 128) completes when every producer thread has arrived and the tile's bytes have
//     landed (TMA: one thread's arrive.expect_tx + the copies' complete_tx, the others arrive
//     plainly; cp.async: each thread's cp.async.mbarrier.arrive), its `empty` mbarrier when
//     every consumer warp's wgmma has finished reading it. Consumers fence the async proxy
//     after `full` and never run a CTA-wide barrier.
//   * S = Q K^T: wgmma m64nBck16 SS (A = Q from smem). P = exp2(S*scale*log2e - m) is packed in
//     registers into the A fragment of O += P V (wgmma m64nDk16 RS).
//   * Intra-warpgroup pipelining (FA3): iteration i issues S(i) = Q K(i)^T and O += P(i-1)
//     V(i-1) back to back, waits only for S(i), runs the softmax of tile i while the tensor
//     cores do P(i-1) V(i-1), then waits for that and rescales O. hd 128 adds FA3's inter-warpgroup
//     ping-pong (named-barrier turns around the GEMM issue: +1.4 % there with TMA loads, nothing at
//     hd 64 / 256, which let the consumers drift apart freely); a 3-deep hd 128 ring was measured
//     and dropped (docs/kernel-notes.md).
//   * Key tiles are walked from the last to the first (masked tiles first), invisible tiles
//     (causal) are skipped; only tiles that contain a masked element get the mask pass. Causal
//     launches schedule heavy query blocks first (blockIdx.x reversed).
//   * Persistent forms (<kernel>_persistent: dense plain / causal, hd 64 / 128, for short work per
//     head; fwd_body): min(blocks, SMs) CTAs each walk a strided share of the grid's blocks, the
//     K / V ring, its phases and the consumers' ping-pong turns carried from block to block, Q
//     double-buffered (the next block's Q loads while this one runs), causal blocks paired
//     q / m - 1 - q so that every CTA's share is even (TileOrder).
//   * Epilogue: O normalised, staged through the warpgroup's own Q rows in smem, written with
//     16-byte coalesced stores; LSE (natural log) per row.
// ---------------------------------------------------------------------------------------------
#pragma once

#include "flash_params.h"
#include "paged_prefill_params.h"
#include "ptx.cuh"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#include <type_traits>

#include "flash_wgmma.cuh"

namespace flashdjl {

// ----------------------------------- PTX helpers ---------------------------------------------
// generic-proxy writes (cp.async, st.shared) -> visible to the async proxy (wgmma operand reads)
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accesses of registers that an in-flight wgmma reads or writes
// across the wait (the asm statements are ordered; this makes the registers depend on them).
template <int N>
__device__ __forceinline__ void reg_fence(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void reg_fence(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// The library's one definition of the mask / score rule and tile ranges.
#include "flash_common.cuh"

// Sequence b of a paged prefill call (paged_prefill_sm90.cu): queries packed by qo_indptr, seq_lens[b] keys in pages
// (no packed key rows: a token's slot comes from the page table).
__device__ __forceinline__ SeqGeometry seq_geometry(const PagedPrefillParams& p, int b) {
  SeqGeometry s;
  s.varlen_q = true;
  s.varlen_k = false;
  s.q0 = p.qo_indptr[b];
  s.lq = p.qo_indptr[b + 1] - s.q0;
  s.lk = p.seq_lens[b];
  s.k0 = 0;
  return s;
}

namespace sm90 {

// Score pass of a key tile (fwd_body's softmax), compile-time bits: kMask = hidden keys -> -inf (tiles with a hidden
// key), kAlibi = the ALiBi bias, kCap = softcap, kCapRef = softcap alone with the cap as the softmax's reference
// (kCapRefWalk). Each combination is its own unrolled loop without a branch per score.
enum ScoreMode : int { kNone = 0, kMask = 1, kAlibi = 2, kCap = 4, kCapRef = 8 };
template <int M> using Mode = std::integral_constant<int, M>;

template <typename T> struct Pack;
template <> struct Pack<__half> {
  static __device__ __forceinline__ uint32_t run(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <> struct Pack<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t run(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

// ----------------------------------- kernel traits -------------------------------------------
template <int D_, int Bc_, int Stages_, bool Persistent_ = false, int WG_ = 2>
struct Traits {
  static constexpr int D = D_;
  static constexpr int Bc = Bc_;
  static constexpr int kStages = Stages_;         // K and V ring depth
  // Persistent kernels (fwd_body): min(work tiles, SMs) CTAs walk the launch's work tiles, Q double-buffered.
  static constexpr bool kPersistent = Persistent_;
  static constexpr int kQBufs = Persistent_ ? 2 : 1;
  // FlashAttention-3's inter-warpgroup ping-pong (fwd_tile): hd 128 only
  static constexpr bool kPingPong = D == 128;
  // Register budgets after the warpgroups specialise (setmaxnreg): 128 x producer + 128 kWG x consumer <= the 64 K
  // registers of the SM the CTA is launched with (two consumers: 384 x 168; 56 / 224 uses all of it). With the TMA path the producer needs 56: at 40 its
  // walk spilled 12-32 B in the plain / causal / packed kernels; at 56 ptxas spills nothing there.
  // Three consumers (FlashTraitsFor's hd 64 tile): FlashAttention-3's 32 / 160.
  static constexpr int kProducerRegs = WG_ == 3 ? 32 : 56;
  static constexpr int kConsumerRegs = WG_ == 3 ? 160 : 224;
  static constexpr int kWG = WG_;                 // consumer warpgroups
  static constexpr int Br = 64 * kWG;
  static constexpr int kThreads = 128 * (kWG + 1);  // + the producer warpgroup
  static constexpr int kCPR = D / 8;              // 16-byte chunks per row
  static constexpr int kTileQ = Br * D * 2;       // bytes
  static constexpr int kTileKV = Bc * D * 2;      // bytes
  static constexpr int kBarBytes = 4 * kStages * 8;  // full / empty mbarriers of K and V
  // Q | K[stages] | V[stages] | (persistent: the second Q buffer) | barriers, tiles 1024-byte aligned; +1024 for
  // aligning the base
  static constexpr int kQ1Offset = kTileQ + 2 * kStages * kTileKV;
  static constexpr int kBarOffset = kQ1Offset + (kQBufs - 1) * kTileQ;
  static constexpr int kSmemBytes = kBarOffset + kBarBytes + 1024;
  static_assert(D % 64 == 0 && Bc % 16 == 0 && Bc <= 256, "shape");
  static_assert(128 * kProducerRegs + 128 * kWG * kConsumerRegs <= 65536, "register budget");
  static_assert(!kPingPong || kWG == 2, "ping-pong pairs two consumers");
  static_assert(128 % kCPR == 0, "loader mapping");
  static_assert(kSmemBytes + 1024 <= 227 * 1024, "shared memory (+ the general kernels' static rule, 1 KB aligned)");
};
// Tiles per head dim (docs/PERF.md, run 16, with the one-address K/V loader): hd 256 takes FlashAttention-3's 80-key
// tile (geometric mean vs cuDNN 0.940 -> 0.956 over 64 keys); hd 128 stays at 128 keys (176 keys with 24 / 240
// registers: 0.869 against 0.878). The hd 256 general / positioned kernels keep 64 keys: at 80 their softcap / ALiBi
// path spills 144 B.
// kPersistent: the persistent form (fwd_body) of a dense plain / causal kernel at hd 64 / 128 (and of the causal-ALiBi
// and causal-softcap kernels), exported beside the per-tile one as <kernel>_persistent (flash_fwd_sm90.cu). Not
// hd 256: no room for a second Q buffer, and a persistent causal kernel with one (Q reloaded after each tile's
// epilogue) spilled 152 B.
template <int D, int V>
struct HasPersistentForm
    : std::bool_constant<D <= 128 && (V == kPlain || V == kCausal || V == kCausalAlibi || V == kCausalSoftcap)> {};
template <int D, int kVariant, bool kPersistent = false> struct TraitsFor {
  static_assert(!kPersistent || HasPersistentForm<D, kVariant>::value, "no persistent form of this kernel");
};
template <int V, bool P> struct TraitsFor<64, V, P> : Traits<64, 128, 3, P> {};
template <int V, bool P> struct TraitsFor<128, V, P> : Traits<128, 128, 2, P> {};
template <int V>
struct TraitsFor<256, V, false> : Traits<256, (V == kGeneral || V == kPositioned) ? 64 : 80, 2> {};
// The flash forward kernels' tiles (flash_fwd_sm90.cu; the paged prefill takes TraitsFor): TraitsFor, but at hd 64 the
// plain kernels and the per-tile causal one take FlashAttention-3's hd 64 tile, 192 query rows on three consumer
// warpgroups (512 threads), 128 keys. Run 59 (H200, flash_check --bench, cuDNN in the same call): +8-15 % on every plain
// row and on causal 16k; the persistent causal form keeps two consumers (three lost 13 % at causal 1k), and so do
// general / positioned (1280 B of spills with three) and packed. ptxas: the three-consumer kernels spill 44 B.
template <int D, int kVariant, bool kPersistent = false>
struct FlashTraitsFor : TraitsFor<D, kVariant, kPersistent> {};
template <int V, bool P>
struct FlashTraitsFor<64, V, P>
    : std::conditional_t<V == kPlain || (V == kCausal && !P), Traits<64, 128, 3, P, 3>, TraitsFor<64, V, P>> {};


// wgmma shared-memory descriptor, 128-byte swizzle. lbo/sbo in bytes.
__device__ __forceinline__ uint64_t make_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((saddr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>((lbo >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

// Byte offset of 16-byte chunk `ch` (0 .. D/8-1) of row r in a swizzled tile of R rows.
template <int R>
__device__ __forceinline__ uint32_t sw_off(int r, int ch) {
  return (ch >> 3) * (R * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4);
}

// ----------------------------------- mbarriers -----------------------------------------------
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives once every cp.async this thread issued so far has landed (the init count includes it).
__device__ __forceinline__ void mbar_arrive_cp_async(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Arrives and adds `bytes` to the phase's expected transaction count (the TMA copies that complete it).
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// ----------------------------------- TMA -----------------------------------------------------
// One box of a rank-4 tensor map (coordinates innermost first) into shared memory; its bytes complete `bar`'s
// transaction count. `map` is the generic address of a __grid_constant__ kernel parameter.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const FlashTensorMap* map, uint32_t bar, int c0, int c1,
                                            int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const FlashTensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// Waits until the phase with this parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\n"
      "LAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\n"
      "bra LAB_WAIT;\n"
      "DONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

// The consumers' Q loader: rows [row0, row0 + Rn) of a global matrix -> rows [srow0, srow0 + Rn) of a swizzled
// smem tile of R rows at s_base, by kThr threads (tid in [0, kThr)); rows >= row_limit are zero-filled and never
// read. row_off(row) is the element offset of a row (plain: row * stride; packed GQA: row r is query r / G of head
// r % G). Once per CTA, so a multiply per row is fine here (the K / V loader below avoids it).
template <int kThr, int kCPR, int R, int Rn, typename T, class RowOff>
__device__ __forceinline__ void load_rows(uint32_t s_base, const T* g, int srow0, int row0,
                                          int row_limit, int tid, RowOff row_off) {
  constexpr int kRPP = kThr / kCPR;  // rows per pass
  static_assert(Rn % kRPP == 0, "tile rows");
  const int ch = tid % kCPR, r0 = tid / kCPR;
#pragma unroll
  for (int it = 0; it < Rn / kRPP; ++it) {
    const int r = r0 + it * kRPP;
    const bool ok = row0 + r < row_limit;
    cp_async_16(s_base + sw_off<R>(srow0 + r, ch), g + (ok ? row_off(row0 + r) : 0) + ch * 8, ok);
  }
}

// The producer's K / V loader: rows [row0, row0 + Rn) of a row-major global matrix (row pitch `stride` elements)
// -> a swizzled smem tile of Rn rows, zero-filling rows >= row_limit and rows the keep predicate refuses. One
// 64-bit source address per thread and tile, advanced kRPP rows per pass (a multiply per row cost the producer more
// issue slots than its copies: it became the bottleneck of the general kernel); the smem offsets are compile-time
// steps from the thread's first row.
template <int kThr, int kCPR, int Rn, typename T, class Keep = KeepAllRows>
__device__ __forceinline__ void load_kv_tile(uint32_t s_base, const T* g, int64_t stride, int row0, int row_limit,
                                             int tid, Keep keep = Keep()) {
  constexpr int kRPP = kThr / kCPR;  // rows per pass
  static_assert(Rn % kRPP == 0, "tile rows");
  const int ch = tid % kCPR, r0 = tid / kCPR;
  const T* src = g + static_cast<int64_t>(row0 + r0) * stride + ch * 8;
  const int64_t step = kRPP * stride;
#pragma unroll
  for (int it = 0; it < Rn / kRPP; ++it) {
    const int row = row0 + r0 + it * kRPP;
    const bool ok = row < row_limit && keep(row);
    cp_async_16(s_base + sw_off<Rn>(r0 + it * kRPP, ch), ok ? src : g, ok);
    src += step;
  }
}

// Division by the page size (a runtime value >= 1) as a multiply-high, an add and a shift: with s = ceil(log2 d) and
// m = ceil(2^(32+s) / d) - 2^32, floor(n / d) = (umulhi(n, m) + n) >> s for every 0 <= n < 2^31 (the rounding error
// n (ceil - exact) / 2^(32+s) stays below 1 / d). Set up once per thread (one 64-bit division).
struct PageDiv {
  uint32_t d, m, s;
  __device__ __forceinline__ explicit PageDiv(int page_size) : d(static_cast<uint32_t>(page_size)) {
    s = d > 1 ? 32 - __clz(d - 1) : 0;
    const uint64_t one = 1ull << 32;
    m = static_cast<uint32_t>(((one << s) + d - 1) / d - one);
  }
  __device__ __forceinline__ int div(int n) const {
    return static_cast<int>((__umulhi(static_cast<uint32_t>(n), m) + static_cast<uint32_t>(n)) >> s);
  }
};

// The paged producer's K / V loader: the same tile as load_kv_tile, token t of the sequence read from pool slot
// pages[t / page_size] * page_size + t % page_size (row pitch `stride`; `pool` already offset to the kv head). Rows
// >= row_limit and rows keep refuses are zero-filled without a read (unused pages are never touched); any page size
// >= 1 works (a tile may straddle pages). The slots come from paged_row_slot (below): each warp touches 32 rows of a
// tile, lane l looked row l's slot up, and the thread copying a row takes it by a shuffle.
template <int kThr, int kCPR, int Rn, typename T, class Keep = KeepAllRows>
__device__ __forceinline__ void load_paged_kv_tile(uint32_t s_base, const T* pool, uint32_t lane_slot, int64_t stride,
                                                   int row0, int row_limit, int tid, Keep keep = Keep()) {
  constexpr int kRPP = kThr / kCPR;  // rows per pass
  constexpr int kWR = 32 / kCPR;     // rows per pass of one warp
  static_assert(Rn % kRPP == 0 && 32 % kCPR == 0 && Rn / kRPP * kWR == 32, "one row per lane");
  const int ch = tid % kCPR, r0 = tid / kCPR;
  const T* base = pool + ch * 8;
#pragma unroll 8
  for (int it = 0; it < Rn / kRPP; ++it) {
    const int t = row0 + r0 + it * kRPP;
    const bool ok = t < row_limit && keep(t);
    const uint32_t slot = __shfl_sync(0xffffffffu, lane_slot, it * kWR + r0 % kWR);
    cp_async_16(s_base + sw_off<Rn>(r0 + it * kRPP, ch), base + static_cast<int64_t>(ok ? slot : 0u) * stride, ok);
  }
}

// The pool slot (page * page_size + token in the page; the launcher keeps pools below 2^32 tokens) of the row this lane
// looks up for load_paged_kv_tile (tile rows from row0; 0 past row_limit): lane l of the warp holds row
// (l % kWR) + (l / kWR) * kRPP of the warp's rows. One table read per lane and tile, issued before the producer waits
// for the ring slot; a value tile reuses its key tile's slots.
template <int kThr, int kCPR>
__device__ __forceinline__ uint32_t paged_row_slot(const int32_t* pages, const PageDiv& div, int row0, int row_limit,
                                                   int tid) {
  constexpr int kRPP = kThr / kCPR, kWR = 32 / kCPR;
  const int lane = tid & 31, r0 = tid / kCPR;
  const int t = row0 + (r0 - r0 % kWR) + lane % kWR + (lane / kWR) * kRPP;
  if (t >= row_limit) return 0;
  const int pi = div.div(t);
  return static_cast<uint32_t>(__ldg(pages + pi)) * div.d + static_cast<uint32_t>(t - pi * static_cast<int>(div.d));
}

// ----------------------------------------- kernel body ---------------------------------------
// Warp-specialised (FlashAttention-3): warpgroup 0 is the producer, warpgroups 1 and 2 the
// consumers.
//   * The producer (128 threads, 56 registers) walks the CTA's key tiles in the consumers' order
//     and fills a ring of kStages K and kStages V slots: whole tiles by TMA (thread 0), the rest
//     with cp.async (zero-fill past the end); the slot's `full` barrier (count 128) completes
//     when all 128 threads have arrived and the data has landed. It waits on the slot's `empty` barrier (count 8: every
//     consumer warp) before refilling. K(n+1) is issued before V(n): S needs K first.
//   * Each consumer warpgroup (224 registers) loads its own 64 Q rows, then per key tile waits on
//     `full`, runs S = Q K^T and O += P V on wgmma with the FA3 intra-warpgroup overlap (S(i) and
//     P(i-1) V(i-1) in flight together, softmax(i) while the tensor cores do the P V), and
//     releases each slot as soon as its wgmma has completed. The two consumer warpgroups synchronise
//     with each other only in hd 128's ping-pong turns; the CTA never runs a __syncthreads after the
//     set-up.
__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }  // b > 0

// The ring's mbarriers at `bars`: full K [S], full V [S] (count 128: every producer thread), empty K [S], empty V [S]
// (count 8: every consumer warp).
template <class Tr>
__device__ __forceinline__ void init_ring_barriers(uint32_t bars) {
  constexpr int S = Tr::kStages;
#pragma unroll
  for (int st = 0; st < S; ++st) {
    mbar_init(bars + 8 * st, 128);
    mbar_init(bars + 8 * (S + st), 128);
    mbar_init(bars + 8 * (2 * S + st), 4 * Tr::kWG);
    mbar_init(bars + 8 * (3 * S + st), 4 * Tr::kWG);
  }
}

// The ALiBi key-term tile of the tensor-core ALiBi path (fwd_body): 16 x Bc elements in the V tile's MN-major layout
// (Bc / 64 blocks of 16 rows x 128 B), static shared memory of the kernels that have the path only.
template <bool kOn, int Bc>
__device__ __forceinline__ unsigned char* alibi_key_tile() {
  if constexpr (kOn) {
    __shared__ __align__(1024) unsigned char tile[Bc * 32];
    return tile;
  } else {
    return nullptr;
  }
}

// Builds the key-term tile: rows 0-2 = c, the key's column in its tile (exact in half and bfloat16 for c < 256), rows
// 3-15 zero. It does not depend on the head (the slope rides on the A operand, alibi_a), so a persistent CTA builds it
// once for every head it walks. ct: this thread's index among the consumer warpgroups' 128 kWG threads.
template <typename T, int Bc, int kWG>
__device__ __forceinline__ void build_alibi_key_tile(unsigned char* kx, int ct) {
  static_assert(Bc <= 256, "c must be exact in bfloat16");
  for (int pc = ct; pc < Bc * 2; pc += 128 * kWG) {  // 16-byte chunks: [Bc / 64 blocks][16 rows][8 chunks]
    const int blk = pc >> 7, k = (pc >> 3) & 15, c0 = blk * 64 + (((pc & 7) ^ (k & 7)) << 3);
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (k < 3)
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const T term = static_cast<T>(static_cast<float>(c0 + e));
        w[e >> 1] |= static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&term)) << (16 * (e & 1));
      }
    *reinterpret_cast<uint4*>(kx + pc * 16) = make_uint4(w[0], w[1], w[2], w[3]);
  }
  fence_proxy_async();
}

// Whether a kernel carries ALiBi's key term on the tensor cores (fwd_tile's kTcAlibi; its key-term tile in
// alibi_key_tile): the general / positioned and causal-ALiBi kernels, dense, hd 64 / 128 (hd 256's walk spilled 208-276 B
// with it, the paged hd 128 general kernel 60 B), key tiles of whole 64-column blocks.
template <int kVariant, int D, int Bc, bool kPaged>
constexpr bool kTcAlibiKernel = (kVariant == kGeneral || kVariant == kPositioned || kVariant == kCausalAlibi) && !kPaged &&
                                D <= 128 && Bc % 64 == 0;

// Three choices of the softcap / general walks, taken in session 25 (runs 125-127, against main before them: fp16
// softcap 1 +17 / +8 %, softcap 4.5 +8 / +11 % at hd 128 / 256, bf16 hd 128 softcap 30 +5 %, other rows level; the checks,
// the Java GPU suite, memcheck and racecheck clean), each once a compile-time switch (their other paths are gone):
// - Q descriptors at issue (issue_s): the general / positioned kernels' S = Q K^T derives its eight Q descriptors at
//   each issue instead of letting the compiler hold them across the walk as eight 64-bit registers. ptxas, hd 128
//   general kernel: spills 40 / 56 B -> 0, for ~10-20 more instructions a tile at the S issue (cuobjdump); the plain
//   kernels, which spill nothing, would only pay the instructions. It frees the registers the two below need.
// - The degree-7 softcap tier folded (finish's kind 3, CapPoly::ShortFolded): five FMA-pipe ops a score instead of
//   seven. Run 76 measured the fold +7-8 % on the softcap 4.5 rows but its four coefficient registers then spilled;
//   with the Q descriptors at issue the hd 128 general kernel spills 0 / 0 B (session 24).
// - A constant softmax reference from the cap (the softcap walk, softcap alone, dense kernels: kCapRefWalk): every
//   capped score lies in [-cap_l2, cap_l2] (log2 units), so with m = cap_l2 - shift each P = 2^(capped - m) is in
//   [2^(shift - 2 cap_l2), 2^shift]. shift = max(0, 2 cap_l2 - kCapRefMinExp) makes the smallest of those a normal
//   number of P's type (half 2^-14; bfloat16 2^-126, also float's smallest normal under -ftz), so every visible key's P
//   keeps the type's relative precision, as with the running max; shift <= kCapRefMaxShift keeps the largest in range
//   (half 2^15 < 65504) and O's float accumulator (sum of P v) within 2^7 (half) / 2^24 (bfloat16) of the headroom the
//   running max leaves it (its P reach 2^kStaleMax): the sum of |v| over a row's keys must stay below 2^96 in bfloat16
//   (2^120 with the running max). No tile then needs the row max: the range pass keeps only max |s| for its tier test
//   (one FMNMX a score instead of the packed pass's 1.5 ops), the past-the-cap pass drops its FMNMX a score, the per-row
//   max / quad shuffles / capped max / rescale factor go, and O is never rescaled. The LSE is m + log2 l as before.
//   Caps up to 10.0 in half (the benchmark's softcap 1 and 4.5 rows; not 30), up to 54.7 in bfloat16 (Grok's 30,
//   Gemma 2's 50). Error model: docs/perf-runs/2026-12-05-session25-softcap-cap-ref-error.py.
// -log2 of the smallest normal P of type T, less a margin for the fits' error on |capped| (<= 1e-6 relative)
template <typename T>
constexpr float kCapRefMinExp = (std::is_same<T, __half>::value ? 14.f : 126.f) - 0x1p-6f;
// the largest shift of the cap reference (the largest P is 2^shift)
template <typename T>
constexpr float kCapRefMaxShift = std::is_same<T, __half>::value ? 15.f : 32.f;
// A tier reference, for half caps too large for the cap reference (softcap 10 to 91; Grok's 30, Gemma 2's 50): the
// softcap walk's tiers bound the capped scores of a tile whose warp maximum |u| is within a tier's limit L by L cap_l2
// (tanh(u) <= |u|), so the cap reference's argument holds with L cap_l2 in place of cap_l2 for as long as every tile of
// the warp stays within L: m = L cap_l2 - shift, shift = max(0, 2 L cap_l2 - kCapRefMinExp) <= kCapRefMaxShift. The
// first tile of a warp past L turns the running max on from there; each row's first running-max tile takes its own max
// as m, down as well as up (row_soft in fwd_tile: the reference bounds the scores from above only). L: the largest of
// the tiers' limits (kShortLim, kTinyLim, kMicroLim) that fits the type, none for caps past 91 (L = kMicroLim) or where
// the cap reference is taken.
// Fp16 softcap 30 (the benchmark's row, every |u| <= 0.05) takes L = kTinyLim, softcap 50 L = kMicroLim. Dense half
// kernels only (kTierRefWalk): bfloat16's cap reference already covers caps up to 54.7.
template <typename T>
__device__ __forceinline__ float tier_ref_limit(float cap_l2) {
  for (const float lim : {CapPoly::kShortLim, CapPoly::kTinyLim, CapPoly::kMicroLim})
    if (2.f * lim * cap_l2 - kCapRefMinExp<T> <= kCapRefMaxShift<T>) return lim;
  return -1.f;  // none (also NaN / inf caps)
}

// The largest x of the warp's lanes, for x >= 0 (-0 included): the bits of a non-negative float, as unsigned, are
// ordered like its values (the sign bit cleared makes -0 a 0); +inf stays +inf. One redux.sync.
__device__ __forceinline__ float warp_max_nonneg(float x) {
  return __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(x) & 0x7fffffffu));
}

// A work tile of a launch: query block m_block of head slot hy (a query head; packed: a key / value head) of
// sequence b; m_block < 0: none.
struct WorkTile {
  int m_block, hy, b;
};
// Which warpgroups run fwd_tile: all three (a per-tile CTA: it initialises the barriers and sets the register
// budgets itself), or one role of a persistent CTA (fwd_body did both).
enum TileRole : int { kAllRoles = 0, kProducerRole = 1, kConsumerRole = 2 };

// One work tile (m_block, hy, b) of the CTA. `ring` counts the key tiles the CTA's ring has carried before this tile
// (the producer and the consumers count alike, so every slot's phase follows from it); returns the tiles this work
// tile added. Persistent consumers (kConsumerRole) also take the Q protocol: Q of this tile is in buffer `qb`
// (loaded by the previous tile, or here when `first`), and the next tile's Q goes into the other buffer while this
// one runs.
template <class Tr, typename T, int kVariant, int kRole, class SP>
__device__ __forceinline__ int fwd_tile(const SP& sp, int m_block, int hy, int b, int ring, int qb, WorkTile next,
                                        bool first) {
  // paged: K / V from page pools, q packed by qo_indptr
  constexpr bool kPaged = std::is_same<SP, PagedPrefillSm90Params>::value;
  static_assert(kRole == kAllRoles || (Tr::kPersistent && !kPaged), "roles are split only in persistent kernels");
  const auto& p = sp.p;  // FlashFwdParams, or PagedPrefillParams
  constexpr int D = Tr::D, Bc = Tr::Bc, Br = Tr::Br, S = Tr::kStages;
  constexpr int kNS = Bc / 2;   // S accumulator floats per thread
  // The online softmax keeps a row's running max until a tile raises it by more than kStaleMax (log2 units), so P <=
  // 2^kStaleMax (well inside half / bfloat16 range) and O is rescaled only on such a rise (FlashAttention-4's
  // rule): on long rows a warp's 16 maxima otherwise creep up on ~40 % of the tiles (run 61: 0.35 FMUL per score).
  // The LSE (m + log2 l) and O / l are unchanged; m = -inf (no key yet) always takes the tile's max.
  constexpr float kStaleMax = 8.f;
  constexpr int kNO = D / 2;    // O accumulator floats per thread
  constexpr int kKP = Bc / 16;  // k16 steps of O += P V
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kLn2 = 0.6931471805599453f;
  using W_S = WG<T, Bc>;
  using W_O = WG<T, D>;

  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t s_base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sQ = qb ? s_base + Tr::kQ1Offset : s_base;  // this tile's Q rows (O is staged there too)
  const uint32_t sK0 = s_base + Tr::kTileQ;
  const uint32_t sV0 = sK0 + S * Tr::kTileKV;
  const uint32_t bars = s_base + Tr::kBarOffset;
  auto full_k = [&](int st) { return bars + 8 * st; };
  auto full_v = [&](int st) { return bars + 8 * (S + st); };
  auto empty_k = [&](int st) { return bars + 8 * (2 * S + st); };
  auto empty_v = [&](int st) { return bars + 8 * (3 * S + st); };

  const int tid = threadIdx.x;
  const int wg = tid >> 7, wtid = tid & 127, warp = wtid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  constexpr bool kAllOptions = kVariant == kGeneral || kVariant == kPositioned;  // every option of the params
  constexpr bool kCausalAlibiV = kVariant == kCausalAlibi;  // the causal rule and ALiBi (p.alibi_slopes), nothing else
  // softcap with the causal rule, nothing else (mask.softcap; the slopes and other mask fields ignored)
  constexpr bool kSoftcapOnlyV = kVariant == kCausalSoftcap;
  constexpr bool kSoftcapKernel = kAllOptions || kSoftcapOnlyV;  // the kernels that read p.mask.softcap
  constexpr bool kPack = kVariant == kPacked;
  const int pack = kPack ? p.hq / p.hkv : 1;  // query heads per CTA (packed: G)
  // h: the tile's first query head (packed: hy is the key/value head, its G query heads are rows)
  const int h = hy * pack;
  const int hk = kPack ? hy : h / (p.hq / p.hkv);

  const SeqGeometry sg = seq_geometry(p, b);  // dense or varlen, each side independently (paged: varlen q)
  const bool varlen_q = sg.varlen_q, varlen_k = sg.varlen_k;
  const int lk = sg.lk, q0 = sg.q0, k0 = sg.k0;
  const int lq = sg.lq * pack;  // the CTA rows' extent (packed: queries x G)
  const int m0 = m_block * Br;
  // Q rows [m0 + 64 cw, m0 + 64 cw + 64) of query head qh of sequence qbatch (geometry g) -> Q buffer sq, by the 128
  // threads of consumer cw (their own cp.async group, committed by the caller)
  auto load_q = [&](uint32_t sq, int qbatch, int qh, const SeqGeometry& g, int qm0, int cw) {
    const T* gQ = static_cast<const T*>(p.q);
    if constexpr (kPaged)
      gQ += g.q0 * p.q_row_stride + qh * p.q_head_stride;
    else
      gQ += seq_offset(g.varlen_q, qbatch, g.q0, qh, p.q_batch_stride, p.q_head_stride, p.q_row_stride);
    const int64_t qs = p.q_row_stride, qhs = p.q_head_stride;
    const int qlq = g.lq * pack;
    if constexpr (kPack)
      load_rows<128, Tr::kCPR, Br, 64>(sq, gQ, cw * 64, qm0 + cw * 64, qlq, wtid, [&](int r) {
        return static_cast<int64_t>(r / pack) * qs + static_cast<int64_t>(r % pack) * qhs;
      });
    else
      load_rows<128, Tr::kCPR, Br, 64>(sq, gQ, cw * 64, qm0 + cw * 64, qlq, wtid,
                                       [&](int r) { return static_cast<int64_t>(r) * qs; });
  };
  if constexpr (kRole == kConsumerRole) {
    // Persistent Q protocol (every tile of the CTA's walk, skipped ones too, so that the buffers alternate): wait
    // for this tile's Q; once every thread of the warpgroup is past it (so also past the previous tile's epilogue,
    // which read its O out of the other buffer), load the next tile's Q into the other buffer.
    const int cw = wg - 1;
    if (first) load_q(sQ, b, h, sg, m0, cw);
    cp_async_commit();
    cp_async_wait_all();
    fence_proxy_async();
    named_barrier(1 + cw, 128);
    if (next.m_block >= 0)
      load_q(qb ? s_base : s_base + Tr::kQ1Offset, next.b, next.hy * pack, seq_geometry(p, next.b),
             next.m_block * Br, cw);
    cp_async_commit();
  }
  if (m0 >= lq) return 0;  // uniform over the CTA
  const int m_end = min(m0 + Br, lq);

  // packed: plain; paged: the general variant places the keys at mask.key_offset (a cascade suffix)
  const MaskRule rule = flash_rule<kPack ? kPlain : kVariant>(p.mask, lk, lq, kPaged);
  const TileRange range = tile_range<Bc>(rule, m0, m_end);
  // The general consumers read the rule from shared memory where they use it (tile edges, loop control): their
  // registers go to the accumulators (plain / causal keep it in registers, mostly folded to constants).
  __shared__ MaskRule s_rule;
  auto rule_at_use = [&]() -> MaskRule {
    if constexpr (kAllOptions) {
      return s_rule;
    } else {
      return rule;
    }
  };
  if constexpr (kRole == kAllRoles) {  // a per-tile CTA sets itself up (a persistent one: fwd_body)
    if (kAllOptions && tid == 0) s_rule = rule;
    if (tid == 0) init_ring_barriers<Tr>(bars);
    __syncthreads();
  }

  // ================================ producer warpgroup ================================
  bool producer_role;
  if constexpr (kRole == kAllRoles)
    producer_role = wg == 0;
  else
    producer_role = kRole == kProducerRole;
  if (producer_role) {
    if constexpr (kRole == kAllRoles) setmaxnreg_dec<Tr::kProducerRegs>();
    if constexpr (kPaged) {
      // ---- paged: the pools offset to the kv head; token t of the sequence is in page pages[t / page_size] ----
      const T* gK = static_cast<const T*>(p.k_pages) + hk * p.kv_head_stride;
      const T* gV = static_cast<const T*>(p.v_pages) + hk * p.kv_head_stride;
      const int32_t* pages = p.page_indices + p.page_indptr[b];
      const PageDiv page_div(p.page_size);
      // TMA (whole tiles, page size a multiple of 8): Bc / box_rows boxes of box_rows tokens per 64 columns, each
      // inside one page; thread c < Bc / box_rows issues box c's D / 64 copies. cp.async (the rest): one row's slot
      // per lane, shuffled to the threads that copy the row. Either way the table is read before the wait for the
      // ring slot (K tile n's lookups serve V tile n too), off the ring's critical path.
      const bool tma = sp.tma != 0;
      const int rb = sp.box_rows;
      const bool box_thread = tma && wtid * rb < Bc;
      // values no row of the block sees (window, sinks) are zero-filled, not read; a tile every row of which is kept
      // (the interior of a window) takes the plain loader
      const KeepVisibleRows keep_v(rule, m0 + rule.off, m_end - 1 + rule.off);
      auto hides = [&](int j0) {
        return kAllOptions && !(j0 + Bc <= keep_v.hi && (j0 >= keep_v.lo || j0 + Bc <= keep_v.sinks));
      };
      if (tma && wtid == 0) {
        tma_prefetch_map(&sp.k_map);
        tma_prefetch_map(&sp.v_map);
      }
      auto whole = [&](int j0) { return j0 + Bc <= lk; };
      // Where tile n's rows are, looked up before the waits and shared by K(n) and V(n): when the tile goes by TMA,
      // this thread's box (page << 32 | first token in the page), else this lane's row slot for cp.async. (A TMA tile
      // whose values the mask partly hides looks its value slots up after the wait, in load_v.)
      auto rows_of = [&](int n) -> int64_t {
        if (n < 0) return 0;
        const int j0 = n * Bc;
        if (tma && whole(j0)) {
          if (!box_thread) return 0;
          const int t = j0 + wtid * rb;
          const int pi = page_div.div(t);
          const uint32_t in_page = static_cast<uint32_t>(t - pi * static_cast<int>(page_div.d));
          return static_cast<int64_t>((static_cast<uint64_t>(__ldg(pages + pi)) << 32) | in_page);
        }
        return static_cast<int64_t>(paged_row_slot<128, Tr::kCPR>(pages, page_div, j0, lk, wtid));
      };
      // Thread 0 arrives with the tile's bytes; a box that lands before that only takes the transaction count below
      // zero for a while (the phase also waits for all 128 arrivals).
      auto tma_tile = [&](uint32_t dst, const FlashTensorMap* map, uint32_t bar, int64_t box) {
        if (wtid == 0) mbar_arrive_expect_tx(bar, Tr::kTileKV);
        if (box_thread) {
          const int page = static_cast<int>(static_cast<uint64_t>(box) >> 32), in_page = static_cast<int>(box);
#pragma unroll
          for (int j = 0; j < D / 64; ++j)
            tma_load_4d(dst + j * (Bc * 128) + wtid * rb * 128, map, bar, 64 * j, in_page, hk, page);
        }
        if (wtid != 0) mbar_arrive(bar);
      };
      auto load_k = [&](int i, int n, int64_t rows) {
        const int st = i % S;
        mbar_wait(empty_k(st), ((i / S) & 1) ^ 1);
        if (tma && whole(n * Bc)) {
          tma_tile(sK0 + st * Tr::kTileKV, &sp.k_map, full_k(st), rows);
        } else {
          load_paged_kv_tile<128, Tr::kCPR, Bc>(sK0 + st * Tr::kTileKV, gK, static_cast<uint32_t>(rows),
                                                p.kv_row_stride, n * Bc, lk, wtid);
          mbar_arrive_cp_async(full_k(st));
        }
      };
      auto load_v = [&](int i, int n, int64_t rows) {
        const int st = i % S;
        mbar_wait(empty_v(st), ((i / S) & 1) ^ 1);
        const int j0 = n * Bc;
        const bool by_tma = tma && whole(j0);  // how K(n) came, so what `rows` holds
        if (by_tma && !hides(j0)) {
          tma_tile(sV0 + st * Tr::kTileKV, &sp.v_map, full_v(st), rows);
        } else {
          const uint32_t slot = by_tma ? paged_row_slot<128, Tr::kCPR>(pages, page_div, j0, lk, wtid)
                                       : static_cast<uint32_t>(rows);
          if (hides(j0))
            load_paged_kv_tile<128, Tr::kCPR, Bc>(sV0 + st * Tr::kTileKV, gV, slot, p.kv_row_stride, j0, lk, wtid,
                                                  keep_v);
          else
            load_paged_kv_tile<128, Tr::kCPR, Bc>(sV0 + st * Tr::kTileKV, gV, slot, p.kv_row_stride, j0, lk, wtid);
          mbar_arrive_cp_async(full_v(st));
        }
      };
      int n = range.first();
      int64_t rows = rows_of(n);  // tile n's rows (K(n) and V(n))
      if (n >= 0) load_k(0, n, rows);
      for (int i = 0; n >= 0; ++i) {
        const int n_next = range.next(n);
        const int64_t rows_next = rows_of(n_next);
        if (n_next >= 0) load_k(i + 1, n_next, rows_next);
        load_v(i, n, rows);
        n = n_next;
        rows = rows_next;
      }
      cp_async_wait_all();
      return 0;
    } else {
      // ---- dense / varlen ----
      const T* gK = static_cast<const T*>(p.k) +
                    seq_offset(varlen_k, b, k0, hk, p.k_batch_stride, p.k_head_stride, p.k_row_stride);
      const T* gV = static_cast<const T*>(p.v) +
                    seq_offset(varlen_k, b, k0, hk, p.v_batch_stride, p.v_head_stride, p.v_row_stride);
      const int64_t ks = p.k_row_stride, vs = p.v_row_stride;
      // TMA: whole tiles of the sequence (rows [n Bc, n Bc + Bc) all < lk) in D / 64 boxes of {64, Bc}, issued by one
      // thread after its arrive.expect_tx; the warpgroup's other threads arrive plainly (the `full` count is 128).
      // The last, partial tile and value tiles with hidden rows go through cp.async with zero fill.
      const bool tma = sp.tma != 0;
      auto whole = [&](int j0) { return j0 + Bc <= lk; };  // tile [j0, j0 + Bc) lies inside the sequence
      const int map_row0 = varlen_k ? k0 : 0, map_batch = varlen_k ? 0 : b;  // the sequence's key 0 in the maps
      if (tma && wtid == 0) {
        tma_prefetch_map(&sp.k_map);
        tma_prefetch_map(&sp.v_map);
      }
      auto tma_tile = [&](uint32_t dst, const FlashTensorMap* map, uint32_t bar, int n) {
        if (wtid == 0) {
          mbar_arrive_expect_tx(bar, Tr::kTileKV);
  #pragma unroll
          for (int j = 0; j < D / 64; ++j) tma_load_4d(dst + j * (Bc * 128), map, bar, 64 * j, map_row0 + n * Bc, hk, map_batch);
        } else {
          mbar_arrive(bar);
        }
      };
      auto load_k = [&](int i, int n) {  // K tile n into slot i % S (the i-th tile of the walk)
        const int st = i % S;
        mbar_wait(empty_k(st), ((i / S) & 1) ^ 1);
        if (tma && whole(n * Bc)) {
          tma_tile(sK0 + st * Tr::kTileKV, &sp.k_map, full_k(st), n);
        } else {
          load_kv_tile<128, Tr::kCPR, Bc>(sK0 + st * Tr::kTileKV, gK, ks, n * Bc, lk, wtid);
          mbar_arrive_cp_async(full_k(st));
        }
      };
      // values no row of the block sees (window, sinks) are zero-filled, not read
      const KeepVisibleRows keep_v(rule, m0 + rule.off, m_end - 1 + rule.off);
      auto load_v = [&](int i, int n) {
        const int st = i % S;
        mbar_wait(empty_v(st), ((i / S) & 1) ^ 1);
        const int j0 = n * Bc;  // a tile every row of which is kept takes the plain loader (the interior of a window)
        const bool hides = kAllOptions && !(j0 + Bc <= keep_v.hi && (j0 >= keep_v.lo || j0 + Bc <= keep_v.sinks));
        if (tma && !hides && whole(j0)) {
          tma_tile(sV0 + st * Tr::kTileKV, &sp.v_map, full_v(st), n);
        } else {
          if (hides)
            load_kv_tile<128, Tr::kCPR, Bc>(sV0 + st * Tr::kTileKV, gV, vs, j0, lk, wtid, keep_v);
          else
            load_kv_tile<128, Tr::kCPR, Bc>(sV0 + st * Tr::kTileKV, gV, vs, j0, lk, wtid);
          mbar_arrive_cp_async(full_v(st));
        }
      };
      int n = range.first();
      if (n >= 0) load_k(ring, n);
      int i = ring;  // ring index of tile n
      for (; n >= 0; ++i) {
        const int n_next = range.next(n);
        if (n_next >= 0) load_k(i + 1, n_next);
        load_v(i, n);
        n = n_next;
      }
      if constexpr (kRole == kAllRoles) cp_async_wait_all();  // (persistent: once, after the CTA's last tile)
      return i - ring;
    }
  }

  // ================================ consumer warpgroups ================================
  if constexpr (kRole == kAllRoles) setmaxnreg_inc<Tr::kConsumerRegs>();
  const int cw = wg - 1;  // consumer index: query rows [64 cw, 64 cw + 64) of the tile
  // Scores: plain / causal, and general calls without softcap and ALiBi, only mask (tiles with a hidden key)
  // and scale by sc; with a score modifier (softcap, ALiBi) the score pass works in log2 units (then sc = 1).
  const float softcap = kSoftcapKernel ? p.mask.softcap : 0.f;
  // softcap alone: this warp's tiles take CapPoly until one has a logit past the cap, then ScoreMod to the end of the
  // work tile (a row block past the cap does not pay the range test on every tile)
  bool cap_poly = true;
  const bool has_alibi = (kAllOptions || kCausalAlibiV) && p.alibi_slopes != nullptr;
  const bool score_mod = softcap > 0.f || has_alibi;
  const float sc = score_mod ? 1.f : p.mask.scale * kLog2e;
  const float slope = has_alibi ? p.alibi_slopes[h] : 0.f;
  // ALiBi's slope in raw q.k units (-slope / scale), for the ALiBi-alone walk's tiles without a tensor-core side; hd 256
  // only (run 121: at hd 128 the raw-unit walk cost softcap 4.5 3 %); 0 (the log2-unit path) elsewhere and when
  // scale <= 0, where a raw max would not be the scaled one
  const float alibi_raw = D == 256 && has_alibi && p.mask.scale > 0.f ? -slope / p.mask.scale : 0.f;
  const bool alibi_only = has_alibi && !(softcap > 0.f);  // the CTA walks Mode<kAlibi> (see the dispatch below)
  // ALiBi on the tensor cores (general and causal-ALiBi kernels, ALiBi without softcap): on a key tile wholly left or
  // right of the warpgroup's 64 rows, -slope |pos - key| = side * slope * c + C(row) with c = key - n Bc, so the c term
  // rides on one more k16 step of S = Q K^T (A from registers = side * slope / scale split into three half / bfloat16
  // terms in columns 0-2, B = c in rows 0-2, built once per CTA in shared memory: build_alibi_key_tile) and the row
  // term C is applied to the row max and inside the exp2's FMA: the score pass of such a tile has the plain kernel's
  // op count (the |pos - key| path of the tiles across the diagonal stays). Off when the key term could pass 6e4 (slope
  // (Bc - 1) / scale): S accumulates it in fp32 beside q.k, whose rounding it would then coarsen past the error budget
  // (a run 118 candidate bounded only slope / scale: the LSE of slopes x 200 / x 2000 missed by 1e-3 to 1e-2).
  // Dense hd 64 / 128 only (kTcAlibiKernel).
  constexpr bool kTcAlibi = kTcAlibiKernel<kVariant, D, Bc, kPaged>;
  const bool tc_alibi = kTcAlibi && alibi_only && p.mask.scale > 0.f &&
                        fabsf(slope) * static_cast<float>(Bc - 1) <= 6.0e4f * p.mask.scale;
  // this thread's A word of the key term for side +1 (row g, columns 2 t4, 2 t4 + 1): (hi, mid) | (lo, 0) | 0, and the
  // sign bits that make it side -1
  uint32_t alibi_apos = 0u, alibi_aneg = 0u;
  if (kTcAlibi && tc_alibi) {
    const float v = slope / p.mask.scale;  // v = hi + mid + lo
    const T hi = static_cast<T>(v);
    const float r = v - static_cast<float>(hi);
    const T mid = static_cast<T>(r);
    const T lo = static_cast<T>(r - static_cast<float>(mid));
    auto bits = [](T x) { return static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&x)); };
    alibi_apos = t4 == 0 ? bits(hi) | bits(mid) << 16 : t4 == 1 ? bits(lo) : 0u;
    alibi_aneg = alibi_apos ^ (t4 == 0 ? 0x80008000u : t4 == 1 ? 0x00008000u : 0u);
  }
  unsigned char* const kx = alibi_key_tile<kTcAlibi, Bc>();
  const uint32_t sKx = kTcAlibi ? smem_addr(kx) : 0u;
  // Tiles n <= alibi_left lie wholly left of this warpgroup's rows (every key <= every row position: side +1),
  // n >= alibi_right wholly right (side -1); set once, so that a step spends two compares on it. Under a causal rule
  // (or a right window of 0) every visible key is <= its row's position, so every tile takes side +1, the tiles across
  // the diagonal included (their keys past a row's position are masked, whatever the key term gave them).
  const int wgpos = m0 + cw * 64 + rule.off;  // positions of this warpgroup's rows: [wgpos, wgpos + 64)
  const bool keys_left = rule.causal || rule.right == 0;
  const int alibi_left = !tc_alibi ? -1 : keys_left ? INT_MAX : floor_div(wgpos + 1, Bc) - 1;  // n Bc + Bc - 1 <= wgpos
  const int alibi_right = tc_alibi ? -floor_div(-(wgpos + 63), Bc) : INT_MAX;    // n Bc >= wgpos + 63
  auto alibi_side = [&](int nn) -> int {
    if constexpr (!kTcAlibi) return 0;
    return nn <= alibi_left ? 1 : nn >= alibi_right ? -1 : 0;
  };
  if constexpr (kTcAlibi && kRole == kAllRoles) {  // (a persistent CTA built it once: fwd_body)
    if (alibi_only) {  // the ALiBi walk reads the tile (with A = 0 without tc_alibi)
      build_alibi_key_tile<T, Bc, Tr::kWG>(kx, wtid + 128 * cw);
      named_barrier(5, 128 * Tr::kWG);
    }
  }
  // A = Q rows [64 cw, 64 cw + 64): K-major, SBO = 1024 (8-row groups), LBO unused (16).
  const uint64_t dQ = make_desc(sQ + cw * 64 * 128, 16, 1024);
  // B = K tile: K-major, same shape.
  const uint64_t dK0 = make_desc(sK0, 16, 1024);
  // B = V tile, MN-major: LBO = next 64-column block (Bc rows * 128 B), SBO = 8-key groups.
  const uint64_t dV0 = make_desc(sV0, Bc * 128, 1024);

  float acc_o[kNO];
#pragma unroll
  for (int i = 0; i < kNO; ++i) acc_o[i] = 0.f;
  float s[kNS];
#pragma unroll
  for (int i = 0; i < kNS; ++i) s[i] = 0.f;
  uint32_t pf[kKP][4];  // P of the previous tile (A fragments of O += P V)
  // rows g / g + 8 of this thread: the running max, and the sum of P over this thread's columns (summed over the quad
  // at the end)
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};
  // softcap alone with a small enough cap (the cap reference): m = cap_l2 - cap_shift for the whole walk, no row max
  const float cap_shift = fmaxf(0.f, 2.f * softcap * kLog2e - kCapRefMinExp<T>);  // (NaN / inf caps: not taken)
  // dense kernels only: the paged prefill general kernels (hd 64 / 128) with the walk's second copy made ptxas serialise
  // their wgmma (C7511: not enough registers for the wgmma pipeline), which would cost every walk of those kernels
  constexpr bool kCapRefWalk = kSoftcapKernel && !kPaged;
  const bool cap_ref = kCapRefWalk && softcap > 0.f && !has_alibi && cap_shift <= kCapRefMaxShift<T>;
  if (cap_ref) row_m[0] = row_m[1] = softcap * kLog2e - cap_shift;
  // else the tier reference (tier_ref_limit): m = tier_lim cap_l2 - shift while this warp's tiles stay within tier_lim
  // (tier_ref), then the running max. Dense half kernels (bfloat16's cap reference covers caps up to 54.7).
  constexpr bool kTierRefWalk = kCapRefWalk && std::is_same<T, __half>::value;
  const float tier_lim = kTierRefWalk && softcap > 0.f && !has_alibi && !cap_ref ? tier_ref_limit<T>(softcap * kLog2e)
                                                                                  : -1.f;
  bool tier_ref = tier_lim > 0.f;
  const float tier_bound = tier_lim * softcap * kLog2e;  // >= every |capped| of a tile within tier_lim, log2 units
  if (tier_ref) row_m[0] = row_m[1] = tier_bound - fmaxf(0.f, 2.f * tier_bound - kCapRefMinExp<T>);
  // row_soft: row_m still holds the tier reference (no running-max tile yet). The reference bounds the scores from
  // above only: a row whose every logit lies far below it (e.g. all near -softcap) would have its P underflow in half
  // against it (run 128: 10 flash_check cases, O off by 0.06-0.09, LSE right). So a row's first running-max tile sets m
  // to that tile's own max, down as well as up (finish_ref), floored at -tier_bound where the reference tiles left a
  // sum (each of their capped scores is >= -tier_bound: O's rescale is then <= 2^(2 tier_bound - shift) = 2^14).
  bool row_soft[2] = {tier_ref, tier_ref};

  // ---- building blocks of the pipeline ----
  // S = Q K^T, K in slot st; the ALiBi walk (kKeyTerm) adds the key term, with A = 0 on tiles without a side (a
  // wgmma under a runtime branch makes ptxas serialise them all). ax: its A fragment, alibi_a(side), set before the
  // caller's wgmma_fence like every register a wgmma reads.
  auto alibi_a = [&](int side, uint32_t (&ax)[1][4]) {
    // this thread's A registers 0 / 1 (rows g / g + 8, columns 2 t4, 2 t4 + 1): side slope / scale in columns 0-2
    const uint32_t a = side == 0 ? 0u : side > 0 ? alibi_apos : alibi_aneg;
    ax[0][0] = a;
    ax[0][1] = a;
    ax[0][2] = 0u;
    ax[0][3] = 0u;
    reg_fence(ax);
  };
  auto issue_s = [&](int st, const uint32_t (&ax)[1][4], auto key_term_tag) {
    constexpr bool kKeyTerm = decltype(key_term_tag)::value;
    const uint64_t dK = dK0 + ((st * Tr::kTileKV) >> 4);
    // general / positioned / causal-softcap kernels: the Q descriptors derived here at each issue from dQ, not hoisted out
    // of the walk as eight 64-bit registers
    uint64_t dQi = dQ;
    if constexpr (kSoftcapKernel) asm volatile("" : "+l"(dQi));
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t qoff = (kk >> 2) * (Br * 128) + (kk & 3) * 32;
      const uint32_t koff = (kk >> 2) * (Bc * 128) + (kk & 3) * 32;
      W_S::ss(s, kk > 0 ? 1 : 0, dQi + (qoff >> 4), dK + (koff >> 4));
    }
    if constexpr (kTcAlibi && kKeyTerm) W_S::rs(s, ax[0], make_desc(sKx, 2048, 1024));
    wgmma_commit();
  };
  auto issue_pv = [&](int st) {  // O += P V, P in pf, V in slot st
    const uint64_t dV = dV0 + ((st * Tr::kTileKV) >> 4);
#pragma unroll
    for (int kk = 0; kk < kKP; ++kk) W_O::rs(acc_o, pf[kk], dV + ((kk * 16 * 128) >> 4));
    wgmma_commit();
  };
  // waits for a slot's data: the cp.async writes (generic proxy) are then made visible to wgmma
  auto wait_full = [&](uint32_t bar, int i) {
    mbar_wait(bar, (i / S) & 1);
    fence_proxy_async();
  };
  auto release = [&](uint32_t bar) {  // this warp's wgmma reads of the slot have completed
    if (lane == 0) mbar_arrive(bar);
  };
  // Score pass of a tile with a modifier (kAlibi / kCap, + kMask), then its online softmax; rows in log2 units.
  //  * ALiBi alone on a tile with a tensor-core side (alibi_side): s = q.k + side slope c / scale already, so the
  //    mask goes on the raw values and the max is taken raw, then one FMA per row (sc_l2 max + C) and per score
  //    (P = exp2(sc_l2 s + C - m)): the plain kernel's op count.
  //  * The rest (ALiBi across the diagonal, softcap, both modifiers): every score to log2 units (ScoreMod::at), the
  //    mask, the max. (Softcap's max taken on the raw q.k first, as it is increasing, measured 0-5 % slower: its
  //    MUFU and FMA pipes are full either way, docs/kernel-notes.md.)
  auto softmax_modified = [&](int n, float (&corr)[2], auto mode_tag) {
    constexpr int kMode = decltype(mode_tag)::value;
    constexpr bool kC = (kMode & kCap) != 0, kA = (kMode & kAlibi) != 0, kM = (kMode & kMask) != 0;
    constexpr bool kRef = (kMode & kCapRef) != 0;  // m = the cap reference throughout (row_m holds it): no row max
    static_assert(!kRef || (kC && !kA), "the cap reference is for softcap alone");
    // the softcap walk without the cap reference, where a tier reference may hold (tier_ref: row_m holds it)
    constexpr bool kTierRef = kTierRefWalk && kC && !kA && !kRef;
    const ScoreMod mod(p.mask.scale, softcap, slope);  // folded per tile: from the params, not held in registers
    const CapPoly cp(mod);  // softcap alone: its MUFU-free tanh (unused otherwise)
    const MaskRule rule = rule_at_use();
    const int pos0 = m0 + cw * 64 + warp * 16 + g + rule.off;  // the positions of this thread's rows: pos0 + 8 hh
    // f(score, |pos - key|) on each of this thread's scores of tile n (the walks that need the distance)
    auto each_dist = [&](auto f) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float d0 = static_cast<float>(pos0 + 8 * hh - (n * Bc + 2 * t4 + e));  // |pos - key| = |d0 - 8 j|
#pragma unroll
          for (int j = 0; j < Bc / 8; ++j) f(s[4 * j + 2 * hh + e], fabsf(d0 - 8.f * j));
        }
    };
    auto mask = [&]() {
      if constexpr (kM) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
#pragma unroll
          for (int j = 0; j < Bc / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (!key_visible(rule, pos0 + 8 * hh, n * Bc + 8 * j + 2 * t4 + e)) s[4 * j + 2 * hh + e] = -INFINITY;
      }
    };
    // kKind 0: s in log2 units; 1: raw, to log2 units by sc_l2 s + cb[hh]; 2: raw softcap scores, all in cp's range
    // (the max taken raw: cp.capped is increasing); 3: as 2, all within CapPoly::kShortLim (its degree-7 fit, folded
    // per tile: CapPoly::ShortFolded);
    // 4: as 2, all within CapPoly::kTinyLim (its degree-5 fit, folded per tile: CapPoly::Tiny); on a masked tile the
    // hidden keys are -inf already (capped_minus(-inf) = -inf); 5: as 2, all within CapPoly::kMicroLim (its degree-3
    // fit, CapPoly::Micro; tiles without a hidden key only)
    // pre: this thread's raw row maxima (kinds 2-5 on a tile without a hidden key: taken by the softcap walk's range
    // pass, pmax), else nullptr: finish takes them from s
    // ref_tag: std::true_type where the tier reference holds on this tile (kTierRef walks only; finish: false)
    auto finish_ref = [&](auto ref_tag, auto kind_tag, float cb0, float cb1, const float* pre) {
      constexpr int kKind = decltype(kind_tag)::value;
      constexpr bool kFixed = kRef || (kTierRef && decltype(ref_tag)::value);  // m = row_m, no row max
      const CapPoly::Tiny tn = cp.tiny();  // kind 4 only (unused otherwise)
      const CapPoly::Micro mc = cp.micro();  // kind 5 only (unused otherwise)
      const CapPoly::ShortFolded sf = cp.short_folded();  // kind 3 only (unused otherwise)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const float cb = hh == 0 ? cb0 : cb1;
        float ms;  // the reference m of P = exp2(score - m)
        if constexpr (kFixed) {
          ms = row_m[hh];  // the cap / tier reference (a finite constant)
          corr[hh] = 1.f;
        } else {
          float mx = -INFINITY;
          if (pre != nullptr) {
            mx = pre[hh];
          } else {
#pragma unroll
            for (int j = 0; j < Bc / 8; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
          }
          mx = quad_max(mx);
          float mt = mx;
          if constexpr (kKind == 1) mt = mx == -INFINITY ? -INFINITY : fmaf(mx, mod.sc_l2, cb);
          if constexpr (kKind == 5) mt = mx == -INFINITY ? -INFINITY : mc.capped(mx);
          else if constexpr (kKind == 4) mt = mx == -INFINITY ? -INFINITY : tn.capped(mx);
          else if constexpr (kKind == 3) mt = mx == -INFINITY ? -INFINITY : sf.capped(mx);
          else if constexpr (kKind == 2) mt = mx == -INFINITY ? -INFINITY : cp.capped(mx);
          float m_new = fmaxf(row_m[hh], mt);
          if (m_new - row_m[hh] <= kStaleMax) m_new = row_m[hh];
          if constexpr (kTierRef) {
            if (row_soft[hh]) {  // the row's first tile on the running max after the tier reference (see row_soft)
              row_soft[hh] = false;
              // quad-uniform: whether any of the row's four threads holds a sum from the reference tiles
              m_new = quad_max(row_l[hh]) > 0.f ? fmaxf(mt, -tier_bound) : mt;
            }
          }
          ms = m_new == -INFINITY ? 0.f : m_new;  // all-masked row: exp2(-inf) = 0
          corr[hh] = fast_exp2(row_m[hh] - ms);
          row_m[hh] = m_new;
        }
        const float bias = cb - ms;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < Bc / 8; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float x = s[4 * j + 2 * hh + e];
            float pv;
            if constexpr (kKind == 1)
              pv = fast_exp2(fmaf(x, mod.sc_l2, bias));
            else if constexpr (kKind == 5)
              pv = fast_exp2(mc.capped_minus(x, ms));
            else if constexpr (kKind == 4)
              pv = fast_exp2(tn.capped_minus(x, ms));
            else if constexpr (kKind == 3)
              pv = fast_exp2(sf.capped_minus(x, ms));
            else if constexpr (kKind == 2)
              pv = fast_exp2(cp.capped_minus(x, ms));
            else
              pv = fast_exp2(x - ms);
            s[4 * j + 2 * hh + e] = pv;
            sum += pv;
          }
        row_l[hh] = row_l[hh] * corr[hh] + sum;
      }
    };
    auto finish = [&](auto kind_tag, float cb0, float cb1, const float* pre = nullptr) {
      finish_ref(std::false_type(), kind_tag, cb0, cb1, pre);
    };
    if constexpr (kC && !kA) {
      // Softcap alone, every score of the warp's rows within |u| <= 1 (no logit past the cap; a hidden key's bits
      // may fail the test, never pass it wrongly: NaN is ignored by fmaxf and masked below): the MUFU-free tanh,
      // one MUFU op per score (the softmax's exp2) instead of two. Without a hidden key the max is taken raw and
      // the tanh's last multiply is the exp2's FMA. On a tile with a larger logit (and the warp's later tiles), ScoreMod.
      if (cap_poly) {
        // ma >= every |s| of this thread's; pmax: its raw row maxima. On a tile without a hidden key both come from
        // one packed pass (packed_row_range: 1.5 ops a score instead of two FMNMX, run 86), else from the exact one.
        float ma = 0.f;
        float pmax[2];
        auto exact_range = [&]() {  // ma alone, one FMNMX a score (|s|: a free operand modifier)
#pragma unroll
          for (int k = 0; k < kNS; ++k) ma = fmaxf(ma, fabsf(s[k]));
          // without a hidden key: else the compiler keeps each |s| (an FADD a score) for the past-the-cap pass's
          // exponent, where the FMUL takes |s| as a free operand modifier
          if constexpr (!kM) reg_fence(s);
        };
        // (kRef, and kTierRef while the tier reference holds: finish takes no max, so one exact FMNMX a score)
        const bool tier_pass = kTierRef && !kM && tier_ref;
        if constexpr (kM || kRef) {
          exact_range();
        } else if (tier_pass) {
          exact_range();
        } else {
          const RowRange r0 = packed_row_range<Bc / 8>(s, 0), r1 = packed_row_range<Bc / 8>(s, 1);
          pmax[0] = r0.mx;
          pmax[1] = r1.mx;
          ma = packed_range_bound(r0.mx, r1.mx, fminf(r0.mn, r1.mn));
        }
        // the warp's largest |u| (one redux.sync; ma >= 0, and a > 0 keeps fl(ma a) ordered like ma): the tier
        // tests below are then uniform compares, not one vote each (run 123: one more vote a tile cost 1-2 %)
        const float wu = warp_max_nonneg(ma) * cp.a;
        cap_poly = wu <= 1.f;
        if constexpr (kTierRef) {
          tier_ref = tier_ref && wu <= tier_lim;  // the warp's first tile past tier_lim: the running max from here
          if (tier_pass && !tier_ref && cap_poly) {  // (once a warp) its row maxima, which the exact pass left out
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
              pmax[hh] = -INFINITY;
#pragma unroll
              for (int j = 0; j < Bc / 8; ++j)
                pmax[hh] = fmaxf(pmax[hh], fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
            }
          }
        }
        // the tiers, each finish against the reference (ref_tag: the tier reference holds) or the running max
        auto tiers = [&](auto ref_tag) {
          if constexpr (kM) {
            if (wu <= CapPoly::kTinyLim && cp.tiny().usable()) {
              // hidden keys -> -inf first (capped_minus(-inf) = -inf: scale > 0 makes the fold's c0, c2 positive),
              // the max taken raw over the visible keys
              mask();
              finish_ref(ref_tag, std::integral_constant<int, 4>(), 0.f, 0.f, nullptr);
            } else {
#pragma unroll
              for (int k = 0; k < kNS; ++k) s[k] = cp.capped(s[k]);
              mask();
              finish_ref(ref_tag, std::integral_constant<int, 0>(), 0.f, 0.f, nullptr);
            }
          } else if (wu <= CapPoly::kMicroLim && cp.micro().usable()) {
            finish_ref(ref_tag, std::integral_constant<int, 5>(), 0.f, 0.f, pmax);  // deeper still: the degree-3 fit
          } else if (wu <= CapPoly::kTinyLim && cp.tiny().usable()) {
            finish_ref(ref_tag, std::integral_constant<int, 4>(), 0.f, 0.f, pmax);  // deep inside the cap: degree 5
          } else if (wu <= CapPoly::kShortLim && cp.short_folded().usable()) {
            finish_ref(ref_tag, std::integral_constant<int, 3>(), 0.f, 0.f, pmax);  // well inside the cap: degree 7
          } else {
            finish_ref(ref_tag, std::integral_constant<int, 2>(), 0.f, 0.f, pmax);
          }
        };
        if (cap_poly) {
          if (kTierRef && tier_ref)  // this tile's P against the tier reference
            tiers(std::true_type());
          else
            tiers(std::false_type());
          return;
        }
      }
    }
    if constexpr (kA && !kC) {
      const int side = alibi_side(n);
      if (side != 0) {
        // -slope |pos - key| in log2 units = sc_l2 * (side slope c / scale) + nslope_l2 side (pos - n Bc)
        mask();
        // row hh's pos - n Bc: d + 8 hh (= pos0 + 8 hh - n Bc, from wgpos's register: no shared-memory read here)
        const int d = wgpos + warp * 16 + g - n * Bc;
        finish(std::integral_constant<int, 1>(), mod.nslope_l2 * static_cast<float>(side * d),
               mod.nslope_l2 * static_cast<float>(side * (d + 8)));
        return;
      }
      if (alibi_raw != 0.f) {
        // ALiBi alone across the diagonal (every tile at hd 256): the bias in raw q.k units, s + (-slope / scale)
        // |pos - key| (one FADD and one FMA a score; the scale to log2 units rides on finish's FMAs, kind 1)
        each_dist([&](float& x, float dist) { x = fmaf(alibi_raw, dist, x); });
        mask();
        finish(std::integral_constant<int, 1>(), 0.f, 0.f);
        return;
      }
    }
    each_dist([&](float& x, float dist) { x = mod.template at<kC, kA>(x, dist); });
    mask();
    finish(std::integral_constant<int, 0>(), 0.f, 0.f);
  };
  // Score pass of tile n by mode (compile-time ScoreMode bits): kMask = hidden keys -> -inf; kAlibi / kCap = the
  // score modifier, in log2 units. Then the online softmax: s <- P (fp32), corr = rescale factor of O.
  // Packing P into pf happens in pack_p(), after the wait for the P(prev) V(prev) wgmma that still reads pf.
  // Row maxima: raw q.k units (scaled by sc) without a modifier, log2 units with one.
  auto softmax = [&](int n, float (&corr)[2], auto mode_tag) {
    constexpr int kMode = decltype(mode_tag)::value;
    constexpr bool kModified = (kMode & (kAlibi | kCap)) != 0;
    if constexpr (kModified) {
      softmax_modified(n, corr, mode_tag);
      return;
    }
    const float scl = sc;
    if constexpr (kMode == kMask) {
      const MaskRule rule = rule_at_use();
      const int pos0 = m0 + cw * 64 + warp * 16 + g + rule.off;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int j = 0; j < Bc / 8; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = n * Bc + 8 * j + 2 * t4 + e, pos = pos0 + 8 * hh;
            if (!key_visible(rule, pos, col)) s[4 * j + 2 * hh + e] = -INFINITY;
          }
    }
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float mx = row_m[hh];
#pragma unroll
      for (int j = 0; j < Bc / 8; ++j)
        mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
      mx = quad_max(mx);
      if ((mx - row_m[hh]) * scl <= kStaleMax) mx = row_m[hh];  // a small rise keeps the max: no rescale of O
      const float ms = mx == -INFINITY ? 0.f : mx * scl;  // all-masked row: exp2(-inf) = 0
      corr[hh] = fast_exp2(row_m[hh] * scl - ms);
      row_m[hh] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < Bc / 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pv = fast_exp2(s[4 * j + 2 * hh + e] * scl - ms);
          s[4 * j + 2 * hh + e] = pv;
          sum += pv;
        }
      row_l[hh] = row_l[hh] * corr[hh] + sum;
    }
  };
  auto pack_p = [&]() {
#pragma unroll
    for (int kk = 0; kk < kKP; ++kk) {
      pf[kk][0] = Pack<T>::run(s[8 * kk + 0], s[8 * kk + 1]);
      pf[kk][1] = Pack<T>::run(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = Pack<T>::run(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = Pack<T>::run(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };

  int n = range.first();
  int walked = 0;  // key tiles this work tile took through the ring
  if (n >= 0) {
    // ---- this warpgroup's Q rows (its own cp.async group; persistent: loaded ahead), then the first tile ----
    if constexpr (kRole == kAllRoles) {
      load_q(sQ, b, h, sg, m0, cw);
      cp_async_commit();
      cp_async_wait_all();
      fence_proxy_async();
      named_barrier(1 + cw, 128);
    }
    auto first_s = [&](auto key_term_tag) {  // tile 0 of the walk: S alone (in the walk when its GEMM differs)
      wait_full(full_k(ring % S), ring);
      uint32_t ax[1][4];
      alibi_a(decltype(key_term_tag)::value ? alibi_side(n) : 0, ax);
      wgmma_fence();
      issue_s(ring % S, ax, key_term_tag);
      wgmma_wait<0>();
      reg_fence(s);
      release(empty_k(ring % S));
    };
    if constexpr (!kTcAlibi) first_s(std::false_type());
    int i = ring + 1;  // ring index of tile n; P(i - 1) in pf, V(i - 1) in slot (i - 1) % S
    // ---- steady state: S(i) and P(i-1) V(i-1) in flight together, softmax(i) overlaps ----
    // FlashAttention-3's inter-warpgroup ping-pong (hd 128): consumer c issues its two GEMMs only after the other
    // consumer has issued its own (named barriers 3 + c; 1 + c are the consumers' own), so one's softmax runs while
    // the tensor cores do the other's GEMMs. Session 8 (TMA loads, run 36): +1.4 % over the 12 hd 128 shapes, +2-5 %
    // on causal ones; nothing at hd 64 / 256 (+0.2 / -0.2 %), which run without it. Both consumers walk the same
    // tiles, so the turns pair up.
    constexpr bool kPingPong = Tr::kPingPong;
    auto pp_wait = [&]() { named_barrier(3 + cw, 256); };
    auto pp_pass = [&]() { named_barrier_arrive(3 + (cw ^ 1), 256); };
    // the ALiBi walk's S GEMMs carry the key term (kTcAlibi kernels, the Kx tile set up)
    auto key_term = [&](auto mode_tag) {
      return std::bool_constant<kTcAlibi && (decltype(mode_tag)::value & (kAlibi | kCap)) == kAlibi>();
    };
    auto step = [&](auto mode_tag) {
      constexpr bool kAlibiOnly = decltype(key_term(mode_tag))::value;
      const int st = i % S, pst = (i - 1) % S;
      wait_full(full_k(st), i);
      wait_full(full_v(pst), i - 1);
      const int side = kAlibiOnly ? alibi_side(n) : 0;
      uint32_t ax[1][4];
      alibi_a(side, ax);
      wgmma_fence();
      if constexpr (kPingPong) pp_wait();
      issue_s(st, ax, key_term(mode_tag));
      issue_pv(pst);
      if constexpr (kPingPong) pp_pass();
      wgmma_wait<1>();
      reg_fence(s);
      release(empty_k(st));
      float corr[2];
      softmax(n, corr, mode_tag);
      reg_fence(s);
      wgmma_wait<0>();
      reg_fence(acc_o);
      reg_fence(pf);
      release(empty_v(pst));
      // O is rescaled only when a row's max moved (hd >= 128: +1.5-3 % non-causal, run 14). hd 64 rescales always: the
      // test lost 3 % there in run 14 and, with the stale-max rule, 3-5 % at L 1k / causal 4k in run 63 (+4 % causal 16k)
      if (D < 128 || corr[0] != 1.f || corr[1] != 1.f) {
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          acc_o[4 * j + 0] *= corr[0];
          acc_o[4 * j + 1] *= corr[0];
          acc_o[4 * j + 2] *= corr[1];
          acc_o[4 * j + 3] *= corr[1];
        }
      }
      pack_p();
      ++i;
      n = range.next(n);
    };
    // Loops without a branch between the wgmma issue and the waits: the tiles that need the mask come first in
    // this descending walk for plain / causal (visibility only grows towards key 0); windows and sinks hide keys at
    // the low end too, so general calls alternate between the two loops. One walk per score modifier (compile-time
    // kModBits), chosen once per CTA.
    auto visible = [&](int nn) { return tile_all_visible<Bc>(rule_at_use(), nn, m0, m_end); };
    // Below the first wholly visible tile of the walk, every tile n >= vis_lo is wholly visible too (the causal and
    // right bounds hide only high keys; vis_lo: the lowest tile whose first key the last row's left window bound
    // keeps, none without a left bound): the general walk tests visibility (a shared-memory read and a compare
    // chain before each issue) only below it (left window edge, sinks).
    const int vis_lo = !kAllOptions || rule.left < 0 ? INT_MIN : -floor_div(rule.left - (m_end - 1 + rule.off), Bc);
    auto walk = [&](auto mod_tag) {
      constexpr int kModBits = decltype(mod_tag)::value;
      if constexpr (kTcAlibi) first_s(key_term(mod_tag));
      // consumer 0 issues first. A persistent CTA's consumers take turns across its work tiles as in one walk (so
      // that consumer 1 can never pass twice before consumer 0 has waited): the first pass at its first walked tile,
      // consumer 0's last wait after its last (fwd_body).
      if constexpr (kPingPong)
        if (cw == 1 && ring == 0) pp_pass();
      {
        float corr[2];  // O is still zero: no rescale
        if (tile_all_visible<Bc>(rule, n, m0, m_end))
          softmax(n, corr, Mode<kModBits>());
        else
          softmax(n, corr, Mode<kModBits | kMask>());
      }
      pack_p();
      n = range.next(n);
      do {
        while (n >= 0 && !visible(n)) step(Mode<kModBits | kMask>());
        while (n >= 0 && ((kAllOptions && n >= vis_lo) || visible(n))) step(Mode<kModBits>());
      } while (kAllOptions && n >= 0);
      if constexpr (kPingPong && kRole == kAllRoles)
        if (cw == 0) pp_wait();  // consumer 1's last pass: every arrival has its sync
    };
    if constexpr (kCausalAlibiV) {
      if (has_alibi)
        walk(Mode<kAlibi>());
      else
        walk(Mode<kNone>());
    } else if constexpr (kSoftcapOnlyV) {
      if (cap_ref)
        walk(Mode<kCap | kCapRef>());
      else if (softcap > 0.f)
        walk(Mode<kCap>());
      else
        walk(Mode<kNone>());
    } else if constexpr (kAllOptions) {
      if (softcap > 0.f) {
        if (has_alibi)
          walk(Mode<kCap | kAlibi>());
        else if (cap_ref) {
          if constexpr (kCapRefWalk) walk(Mode<kCap | kCapRef>());  // (not instantiated where it cannot be taken)
        } else {
          walk(Mode<kCap>());
        }
      } else if (has_alibi) {
        walk(Mode<kAlibi>());
      } else {
        walk(Mode<kNone>());
      }
    } else {
      walk(Mode<kNone>());
    }
    // ---- last P V ----
    wait_full(full_v((i - 1) % S), i - 1);
    wgmma_fence();
    issue_pv((i - 1) % S);
    wgmma_wait<0>();
    reg_fence(acc_o);
    reg_fence(pf);
    if constexpr (kRole != kAllRoles) release(empty_v((i - 1) % S));  // the producer refills it for the next tile
    walked = i - ring;
  }

  // ---- epilogue: normalise, LSE, O staged in this warpgroup's Q rows, 16-byte stores ----
  int64_t lse_off;  // the LSE of row r: lse_off + r * lse_row_stride (packed: see below)
  if constexpr (kPaged)
    lse_off = q0 * p.lse_row_stride + h;  // [totalQ, Hq], head stride 1
  else
    lse_off = varlen_q ? h * p.lse_head_stride + q0 * p.lse_row_stride
                       : b * p.lse_batch_stride + h * p.lse_head_stride;
  const int rw = cw * 64 + warp * 16 + g;  // CTA row of hh = 0
  float inv[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const float l = quad_sum(row_l[hh]);
    inv[hh] = l > 0.f ? 1.f / l : 0.f;
    const int r = m0 + rw + 8 * hh;
    if (p.lse != nullptr && t4 == 0 && r < lq) {
      int64_t at;
      if constexpr (kPack)
        at = (r / pack) * p.lse_row_stride + (r % pack) * p.lse_head_stride;
      else
        at = r * p.lse_row_stride;
      p.lse[lse_off + at] = l > 0.f ? (row_m[hh] * sc + fast_log2(l)) * kLn2 : -INFINITY;
    }
  }
  unsigned char* smem_gen = smem_raw + (sQ - smem_addr(smem_raw));  // generic view of sQ
  named_barrier(1 + cw, 128);  // every warp of this warpgroup is done reading its Q rows
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = rw + 8 * hh;
      *reinterpret_cast<uint32_t*>(smem_gen + sw_off<Br>(r, j) + 4 * t4) =
          Pack<T>::run(acc_o[4 * j + 2 * hh] * inv[hh], acc_o[4 * j + 2 * hh + 1] * inv[hh]);
    }
  named_barrier(1 + cw, 128);
  T* gO = static_cast<T*>(p.o);
  if constexpr (kPaged)
    gO += q0 * p.o_row_stride + h * p.o_head_stride;
  else
    gO += seq_offset(varlen_q, b, q0, h, p.o_batch_stride, p.o_head_stride, p.o_row_stride);
#pragma unroll
  for (int c = wtid; c < 64 * Tr::kCPR; c += 128) {
    const int rl = c / Tr::kCPR, ch = c % Tr::kCPR;
    const int r = cw * 64 + rl;
    if (m0 + r < lq) {
      const int row = m0 + r;
      const int64_t at = kPack ? (row / pack) * p.o_row_stride + (row % pack) * p.o_head_stride
                               : static_cast<int64_t>(row) * p.o_row_stride;
      *reinterpret_cast<uint4*>(gO + at + ch * 8) =
          *reinterpret_cast<const uint4*>(smem_gen + sw_off<Br>(r, ch));
    }
  }
  return walked;
}

// The work of a persistent launch: the per-tile grid's blocks (m_blocks query blocks x slots head slots x batch) as
// jobs that CTA c takes in turn, c, c + gridDim.x, ...; units (sequence b, head slot hy) in the grid's order (head
// slot fastest), the query block fastest inside a unit, so that the jobs in flight at a time share the K / V of a few
// units in L2, as a per-tile grid's blocks do. Causal launches pair a unit's query blocks q and m_blocks - 1 - q in one
// job (the heavy one first): a pair's key tiles add up to the same count for every q, so strided jobs keep the CTAs'
// shares even (with single blocks per job, the CTAs' shares of a causal launch differed by ~15 %).
struct TileOrder {
  int m_blocks, slots, per_unit, jobs;
  bool pairs;
  __device__ __forceinline__ TileOrder(int m_blocks_, int slots_, int batch, bool pairs_)
      : m_blocks(m_blocks_), slots(slots_), per_unit(pairs_ ? (m_blocks_ + 1) / 2 : m_blocks_),
        jobs((pairs_ ? (m_blocks_ + 1) / 2 : m_blocks_) * slots_ * batch), pairs(pairs_) {}
  // work tiles of job j: two for a pair, one otherwise (non-causal, or the middle block of an odd count)
  __device__ __forceinline__ int count(int j) const {
    if (!pairs) return 1;
    const int q = j % per_unit;
    return m_blocks - 1 - q == q ? 1 : 2;
  }
  __device__ __forceinline__ WorkTile at(int j, int half) const {
    const int unit = j / per_unit, q = j - unit * per_unit;
    return WorkTile{pairs && half == 0 ? m_blocks - 1 - q : q, unit % slots, unit / slots};
  }
  // the tile after tile `half` of job j in a CTA's walk (stride: the grid); m_block = -1 past its last
  __device__ __forceinline__ WorkTile after(int j, int half, int stride) const {
    if (half + 1 < count(j)) return at(j, half + 1);
    return j + stride < jobs ? at(j + stride, 0) : WorkTile{-1, 0, 0};
  }
};

// cfg[4] of a per-tile kernel (flash_fwd_sm90.cu): the launcher runs its persistent form <kernel>_persistent instead,
// with min(blocks, SMs) CTAs, when the grid has at most this many query blocks per (sequence, head); 0: no such form.
// Runs 53-54 (H200, hd 64 / 128, same call): one CTA per SM gained 5-15 % at L 1k (causal 4k: +6-8 %), but lost
// 2-5 % on the long rows (non-causal 4k at hd 64, 16k; causal 16k), where the per-block start it saves is small and a
// static share cannot follow the SMs' different speeds the way the hardware's block scheduler does; the persistent
// form run with one CTA per job (a flat grid) still lost 2-5 % there, so long work keeps the per-tile kernel.
// Run 66 (session 15): hd 128 non-causal L 4k (32 blocks per head) on the persistent form +1.4-2.3 % (burst and
// sustained, fp16 and bf16, three pairs each): the hd 128 plain kernel's limit is 32 like the causal ones'.
template <int D, int kVariant>
constexpr int persistent_blocks() {
  return !HasPersistentForm<D, kVariant>::value ? 0 : (kCausalVariant<kVariant> || D == 128) ? 32 : 16;
}

// The kernel body. Per-tile kernels (one CTA per block of the grid (ceil(lq / Br), slots, batch)) run fwd_tile once
// for blockIdx, causal blocks heavy first. Persistent ones (Tr::kPersistent; grid = (min(blocks, SMs), 1, 1)) set up
// the ring once and walk TileOrder's jobs blockIdx.x, + gridDim.x, ...: the producer runs ahead into the next tile's
// K / V while the consumers finish the last one, and each consumer loads the next tile's Q into its second buffer.
template <class Tr, typename T, int kVariant, class SP = FlashFwdSm90Params>
__device__ __forceinline__ void fwd_body(const SP& sp) {
  const auto& p = sp.p;
  if (p.head_dim != Tr::D) return;
  constexpr bool kAllOptions = kVariant == kGeneral || kVariant == kPositioned;
  const bool causal_order = kCausalVariant<kVariant> || (kAllOptions && p.mask.causal != 0);
  if constexpr (!Tr::kPersistent) {
    const int m_block = causal_order ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heavy blocks first
    fwd_tile<Tr, T, kVariant, kAllRoles>(sp, m_block, blockIdx.y, blockIdx.z, 0, 0, WorkTile{-1, 0, 0}, true);
  } else {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    const uint32_t s_base = (smem_addr(smem_raw) + 1023u) & ~1023u;
    const int tid = threadIdx.x, wg = tid >> 7;
    if (tid == 0) init_ring_barriers<Tr>(s_base + Tr::kBarOffset);
    __syncthreads();
    const TileOrder order((p.lq + Tr::Br - 1) / Tr::Br, p.hq, p.batch, causal_order);
    const int stride = gridDim.x;
    int ring = 0;
    if (wg == 0) {
      setmaxnreg_dec<Tr::kProducerRegs>();
      for (int j = blockIdx.x; j < order.jobs; j += stride)
        for (int half = 0; half < order.count(j); ++half) {
          const WorkTile w = order.at(j, half);
          ring += fwd_tile<Tr, T, kVariant, kProducerRole>(sp, w.m_block, w.hy, w.b, ring, 0, WorkTile{-1, 0, 0},
                                                           false);
        }
      cp_async_wait_all();
    } else {
      setmaxnreg_inc<Tr::kConsumerRegs>();
      // (persistent forms exist for plain / causal / causal-ALiBi / causal-softcap only: of those, causal-ALiBi has the
      // key term)
      if constexpr (kTcAlibiKernel<kVariant, Tr::D, Tr::Bc, false>) {
        if (p.alibi_slopes != nullptr) {  // the ALiBi key-term tile, the same for every work tile (fwd_tile)
          build_alibi_key_tile<T, Tr::Bc, Tr::kWG>(alibi_key_tile<true, Tr::Bc>(), tid - 128);
          named_barrier(5, 128 * Tr::kWG);
        }
      }
      int k = 0;  // tiles walked so far: Q buffer k & 1
      for (int j = blockIdx.x; j < order.jobs; j += stride)
        for (int half = 0; half < order.count(j); ++half, ++k) {
          const WorkTile w = order.at(j, half);
          ring += fwd_tile<Tr, T, kVariant, kConsumerRole>(sp, w.m_block, w.hy, w.b, ring, k & 1,
                                                           order.after(j, half, stride), k == 0);
        }
      // consumer 0's last ping-pong wait: consumer 1's last pass has its sync (fwd_tile's walk)
      if (Tr::kPingPong && wg == 1 && ring > 0) named_barrier(3, 256);
    }
  }
}

}  // namespace sm90
}  // namespace flashdjl
