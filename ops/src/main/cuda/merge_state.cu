// FlashDJL merge-state kernels: merging attention states (v, s), v the output over a segment of
// keys and s its natural-log LSE (fp32). Semantics exactly org.flashdjl.ops.cascade.MergeState:
//   s = logaddexp(s_a, s_b);  v = v_a e^(s_a - s) + v_b e^(s_b - s);  two -inf states -> (0, -inf).
// A state whose weight is exactly 0 (s = -inf, or negligible next to the others) is never read, so
// an empty state may hold any bytes (NaN included) in v.
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by org.flashdjl.ops.cuda.MergeStateKernel):
//   pair    merge_state_{fp16|bf16|fp32}_{vec|scalar}(MergeStateParams)
//           v_out/s_out may equal v_a/s_a (in place): every thread of a block reads its LSEs before
//           any thread writes one (__syncthreads), and each v element is read and written by the
//           same thread.
//   stacked merge_states_{in}_{out}_{vec|scalar|wide}(MergeStateParams), in -> out one of fp16->fp16,
//           bf16->bf16, fp32->fp32, fp32->fp16, fp32->bf16 (split-KV partials are fp32); out of place.
//           wide (few rows, many states: the split-KV merge): grid = (N * H, 1, 1), one block per row;
//           needs the vec conditions, D / width <= threads and 1 <= n <= 1024.
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, 0, 1, vectorWidth}
//   grid  = (ceil(N * H / rowsPerBlock), 1, 1) with chunks = ceil(D / width), tpr = min(chunks,
//           threads), rowsPerBlock = threads / tpr (the Java launcher computes the same).
//   vec: 16-byte loads; needs D % width == 0, 16-byte aligned v bases and v strides that are
//   multiples of width (width = 16 / sizeof(input element)); scalar: any D, any alignment.
// ---------------------------------------------------------------------------------------------

#include "merge_params.h"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <float.h>
#include <stdint.h>

namespace flashdjl_merge {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// W elements of T as one aligned memory transaction.
template <typename T, int W> struct alignas(sizeof(T) * W) Pack { T x[W]; };

template <typename T, int W>
__device__ __forceinline__ void load_acc(float* acc, const T* p, float w) {
  Pack<T, W> v = *reinterpret_cast<const Pack<T, W>*>(p);
#pragma unroll
  for (int e = 0; e < W; ++e) acc[e] = fmaf(w, to_f(v.x[e]), acc[e]);
}

template <typename T, int W>
__device__ __forceinline__ void store(T* p, const float* acc, float scale) {
  Pack<T, W> v;
#pragma unroll
  for (int e = 0; e < W; ++e) v.x[e] = from_f<T>(acc[e] * scale);
  *reinterpret_cast<Pack<T, W>*>(p) = v;
}

struct RowMap {
  int tpr, lane, chunks;
  int64_t row;  // flat (n, h) index
  bool active;
};

__device__ __forceinline__ RowMap map_rows(const MergeStateParams& p, int width) {
  RowMap m;
  m.chunks = (p.head_dim + width - 1) / width;
  m.tpr = min(m.chunks, kThreads);
  const int rows_per_block = kThreads / m.tpr;
  const int local = threadIdx.x / m.tpr;
  m.lane = threadIdx.x % m.tpr;
  m.row = static_cast<int64_t>(blockIdx.x) * rows_per_block + local;
  m.active = local < rows_per_block && m.row < static_cast<int64_t>(p.rows) * p.heads;
  return m;
}

template <typename T, bool kVec>
__device__ __forceinline__ void merge_pair(const MergeStateParams& p) {
  constexpr int W = kVec ? 16 / static_cast<int>(sizeof(T)) : 1;
  const RowMap m = map_rows(p, W);
  int64_t n = 0, h = 0;
  float sa = -INFINITY, sb = -INFINITY;
  if (m.active) {
    n = m.row / p.heads;
    h = m.row % p.heads;
    sa = p.s_a[n * p.s_a_row_stride + h * p.s_a_head_stride];
    sb = p.s_b[n * p.s_b_row_stride + h * p.s_b_head_stride];
  }
  __syncthreads();  // in place: every LSE of the block is read before any is written
  if (!m.active) return;
  const float mx = fmaxf(fmaxf(sa, sb), -FLT_MAX);  // two -inf states: weights 0, not NaN
  const float wa = expf(sa - mx), wb = expf(sb - mx);
  const float sum = wa + wb;
  const float inv = 1.f / fmaxf(sum, 1.f);  // sum >= 1 unless both are -inf (then v = 0)
  const T* va = static_cast<const T*>(p.v_a) + n * p.v_a_row_stride + h * p.v_a_head_stride;
  const T* vb = static_cast<const T*>(p.v_b) + n * p.v_b_row_stride + h * p.v_b_head_stride;
  T* vo = static_cast<T*>(p.v_out) + n * p.v_out_row_stride + h * p.v_out_head_stride;
  for (int c = m.lane; c < m.chunks; c += m.tpr) {
    const int d = c * W;
    float acc[W];
#pragma unroll
    for (int e = 0; e < W; ++e) acc[e] = 0.f;
    if (d < p.head_dim) {
      if (wa != 0.f) load_acc<T, W>(acc, va + d, wa);
      if (wb != 0.f) load_acc<T, W>(acc, vb + d, wb);
      store<T, W>(vo + d, acc, inv);
    }
  }
  if (m.lane == 0 && p.s_out != nullptr) {
    p.s_out[n * p.s_out_row_stride + h * p.s_out_head_stride] = mx + logf(sum);
  }
}

template <typename Tin, typename Tout, bool kVec>
__device__ __forceinline__ void merge_stacked(const MergeStateParams& p) {
  constexpr int W = kVec ? 16 / static_cast<int>(sizeof(Tin)) : 1;
  const RowMap m = map_rows(p, W);
  if (!m.active) return;
  const int64_t n = m.row / p.heads, h = m.row % p.heads;
  const float* s = p.s_a + n * p.s_a_row_stride + h * p.s_a_head_stride;
  const int64_t ss = p.s_a_state_stride;
  // Loads are batched kU states at a time so that their latencies overlap (split-KV merges have
  // few rows and tens of states: a one-state-at-a-time loop would be latency bound).
  constexpr int kU = 8;
  float mx = -FLT_MAX;
#pragma unroll kU
  for (int i = 0; i < p.states; ++i) mx = fmaxf(mx, s[i * ss]);
  float sum = 0.f;
#pragma unroll kU
  for (int i = 0; i < p.states; ++i) sum += expf(s[i * ss] - mx);
  const float inv = 1.f / fmaxf(sum, 1.f);
  const Tin* v = static_cast<const Tin*>(p.v_a) + n * p.v_a_row_stride + h * p.v_a_head_stride;
  Tout* vo = static_cast<Tout*>(p.v_out) + n * p.v_out_row_stride + h * p.v_out_head_stride;
  for (int c = m.lane; c < m.chunks; c += m.tpr) {
    const int d = c * W;
    float acc[W];
#pragma unroll
    for (int e = 0; e < W; ++e) acc[e] = 0.f;
    for (int i0 = 0; i0 < p.states; i0 += kU) {
      float w[kU];
      Pack<Tin, W> x[kU];
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int i = i0 + u;
        w[u] = i < p.states ? expf(s[i * ss] - mx) : 0.f;
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        if (w[u] != 0.f) x[u] = *reinterpret_cast<const Pack<Tin, W>*>(v + (i0 + u) * p.v_a_state_stride + d);
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        if (w[u] != 0.f) {
#pragma unroll
          for (int e = 0; e < W; ++e) acc[e] = fmaf(w[u], to_f(x[u].x[e]), acc[e]);
        }
      }
    }
    store<Tout, W>(vo + d, acc, inv);
  }
  if (m.lane == 0 && p.s_out != nullptr) {
    p.s_out[n * p.s_out_row_stride + h * p.s_out_head_stride] = mx + logf(sum);
  }
}

// Few rows, many states (the split-KV merge: B * Hq rows of tens of fp32 partials): one block per
// (n, h) row; the LSEs go through shared memory once, and the states are spread over thread groups
// (thread (g, c) takes chunk c of states g, g + groups, ...) whose partial sums meet in shared
// memory, so each thread waits on a handful of loads instead of a chain of n.
constexpr int kWideMaxStates = 1024;

template <typename Tin, typename Tout>
__device__ __forceinline__ void merge_stacked_wide(const MergeStateParams& p) {
  constexpr int W = 16 / static_cast<int>(sizeof(Tin));
  __shared__ float sw[kWideMaxStates];
  __shared__ float part[kThreads * W];
  const int chunks = p.head_dim / W;  // <= kThreads (checked by the launcher)
  const int groups = kThreads / chunks;
  const int g = threadIdx.x / chunks, c = threadIdx.x % chunks;
  const int64_t row = blockIdx.x;
  const int64_t n = row / p.heads, h = row % p.heads;
  const float* s = p.s_a + n * p.s_a_row_stride + h * p.s_a_head_stride;
  for (int i = threadIdx.x; i < p.states; i += kThreads) sw[i] = s[i * p.s_a_state_stride];
  __syncthreads();
  float mx = -FLT_MAX;
  for (int i = 0; i < p.states; ++i) mx = fmaxf(mx, sw[i]);
  __syncthreads();  // everyone has the max before the weights overwrite the LSEs
  for (int i = threadIdx.x; i < p.states; i += kThreads) sw[i] = expf(sw[i] - mx);
  __syncthreads();
  float acc[W];
#pragma unroll
  for (int e = 0; e < W; ++e) acc[e] = 0.f;
  const bool active = g < groups;
  if (active) {
    const Tin* v = static_cast<const Tin*>(p.v_a) + n * p.v_a_row_stride + h * p.v_a_head_stride + c * W;
#pragma unroll 4
    for (int i = g; i < p.states; i += groups) {
      const float w = sw[i];
      if (w != 0.f) load_acc<Tin, W>(acc, v + i * p.v_a_state_stride, w);
    }
#pragma unroll
    for (int e = 0; e < W; ++e) part[(g * chunks + c) * W + e] = acc[e];
  }
  __syncthreads();
  if (g == 0) {
    float sum = 0.f;
    for (int i = 0; i < p.states; ++i) sum += sw[i];
    for (int gg = 1; gg < groups; ++gg) {
#pragma unroll
      for (int e = 0; e < W; ++e) acc[e] += part[(gg * chunks + c) * W + e];
    }
    Tout* vo = static_cast<Tout*>(p.v_out) + n * p.v_out_row_stride + h * p.v_out_head_stride + c * W;
    store<Tout, W>(vo, acc, 1.f / fmaxf(sum, 1.f));
    if (c == 0 && p.s_out != nullptr) {
      p.s_out[n * p.s_out_row_stride + h * p.s_out_head_stride] = mx + logf(sum);
    }
  }
}

}  // namespace flashdjl_merge

#define FLASHDJL_MERGE_PAIR(NAME, T, VEC, W)                                                   \
  extern "C" __global__ void __launch_bounds__(flashdjl_merge::kThreads)                      \
      merge_state_##NAME(const MergeStateParams p) {                                          \
    flashdjl_merge::merge_pair<T, VEC>(p);                                                     \
  }                                                                                            \
  extern "C" __device__ int merge_state_##NAME##_cfg[4] = {flashdjl_merge::kThreads, 0, 1, W};

#define FLASHDJL_MERGE_STACKED(NAME, TIN, TOUT, VEC, W)                                        \
  extern "C" __global__ void __launch_bounds__(flashdjl_merge::kThreads)                      \
      merge_states_##NAME(const MergeStateParams p) {                                         \
    flashdjl_merge::merge_stacked<TIN, TOUT, VEC>(p);                                          \
  }                                                                                            \
  extern "C" __device__ int merge_states_##NAME##_cfg[4] = {flashdjl_merge::kThreads, 0, 1, W};

#define FLASHDJL_MERGE_WIDE(NAME, TIN, TOUT, W)                                                \
  extern "C" __global__ void __launch_bounds__(flashdjl_merge::kThreads)                      \
      merge_states_##NAME##_wide(const MergeStateParams p) {                                  \
    flashdjl_merge::merge_stacked_wide<TIN, TOUT>(p);                                          \
  }                                                                                            \
  extern "C" __device__ int merge_states_##NAME##_wide_cfg[4] = {flashdjl_merge::kThreads, 0, 1, W};

FLASHDJL_MERGE_PAIR(fp16_vec, __half, true, 8)
FLASHDJL_MERGE_PAIR(fp16_scalar, __half, false, 1)
FLASHDJL_MERGE_PAIR(bf16_vec, __nv_bfloat16, true, 8)
FLASHDJL_MERGE_PAIR(bf16_scalar, __nv_bfloat16, false, 1)
FLASHDJL_MERGE_PAIR(fp32_vec, float, true, 4)
FLASHDJL_MERGE_PAIR(fp32_scalar, float, false, 1)

FLASHDJL_MERGE_STACKED(fp16_fp16_vec, __half, __half, true, 8)
FLASHDJL_MERGE_STACKED(fp16_fp16_scalar, __half, __half, false, 1)
FLASHDJL_MERGE_STACKED(bf16_bf16_vec, __nv_bfloat16, __nv_bfloat16, true, 8)
FLASHDJL_MERGE_STACKED(bf16_bf16_scalar, __nv_bfloat16, __nv_bfloat16, false, 1)
FLASHDJL_MERGE_STACKED(fp32_fp32_vec, float, float, true, 4)
FLASHDJL_MERGE_STACKED(fp32_fp32_scalar, float, float, false, 1)
FLASHDJL_MERGE_STACKED(fp32_fp16_vec, float, __half, true, 4)
FLASHDJL_MERGE_STACKED(fp32_fp16_scalar, float, __half, false, 1)
FLASHDJL_MERGE_STACKED(fp32_bf16_vec, float, __nv_bfloat16, true, 4)
FLASHDJL_MERGE_STACKED(fp32_bf16_scalar, float, __nv_bfloat16, false, 1)
FLASHDJL_MERGE_WIDE(fp16_fp16, __half, __half, 8)
FLASHDJL_MERGE_WIDE(bf16_bf16, __nv_bfloat16, __nv_bfloat16, 8)
FLASHDJL_MERGE_WIDE(fp32_fp32, float, float, 4)
FLASHDJL_MERGE_WIDE(fp32_fp16, float, __half, 4)
FLASHDJL_MERGE_WIDE(fp32_bf16, float, __nv_bfloat16, 4)
