// FlashDJL fused transformer kernels: the small operators around attention and the matrix products
// of a decoder layer, each one pass over its rows, so that a layer costs a handful of launches.
// Semantics exactly org.flashdjl.ops.transformer.TransformerOps (whose NDArray math is the CPU path
// and the reference): see fused_params.h for each kernel's contract. Rounding follows Hugging Face
// transformers' eager modules where they round to the activation dtype between steps (RMSNorm's
// normed value before the weight, the activation before the gate product, the residual sum).
//
// ---------------------------------------------------------------------------------------------
// Launch convention (read by org.flashdjl.ops.cuda.FusedKernels):
//   rms_norm_{fp16|bf16|fp32}(RmsNormParams)        grid (rows), block kNormThreads
//   rope_store_{fp16|bf16|fp32}(RopeStoreParams)    grid (tokens), block kRopeThreads
//   gated_act_{fp16|bf16|fp32}(GatedActParams)      grid (min(ceil(rows*inter/threads), cap)),
//                                                   block kActThreads (grid-stride loop)
//   config  __device__ int <kernel>_cfg[4] = {threadsPerBlock, 0, 1, 1}
// Every element is read and written by the same thread, so the in-place aliases that
// fused_params.h allows are safe.
// ---------------------------------------------------------------------------------------------

#include "fused_params.h"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

namespace flashdjl_fused {

constexpr int kNormThreads = 256;
constexpr int kRopeThreads = 128;
constexpr int kActThreads = 256;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
// x rounded to T and back: the value an eager framework holds between two ops in dtype T.
template <typename T> __device__ __forceinline__ float round_to(float x) { return to_f(from_f<T>(x)); }

// Sum over the block; every thread gets the total.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  float t = lane < warps ? scratch[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

template <typename T>
__device__ void rms_norm(const RmsNormParams& p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.x_row_stride;
  const T* r = p.residual == nullptr ? nullptr : static_cast<const T*>(p.residual) + row * p.residual_row_stride;
  T* s = r == nullptr ? nullptr : static_cast<T*>(p.sum_out) + row * p.sum_row_stride;
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;
  const T* w = static_cast<const T*>(p.weight);
  float ss = 0.f;
  for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) {
    float v;
    if (r != nullptr) {
      const T sum = from_f<T>(to_f(x[i]) + to_f(r[i]));
      s[i] = sum;
      v = to_f(sum);
    } else {
      v = to_f(x[i]);
    }
    ss = fmaf(v, v, ss);
  }
  const float total = block_sum(ss, scratch);
  const float inv = rsqrtf(total / static_cast<float>(p.hidden) + p.eps);
  for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) {
    const float v = r != nullptr ? to_f(s[i]) : to_f(x[i]);
    const float wi = to_f(w[i]);
    out[i] = p.style == 0 ? from_f<T>(round_to<T>(v * inv) * wi) : from_f<T>(v * inv * (1.f + wi));
  }
}

template <typename T>
__device__ void rope_store(const RopeStoreParams& p) {
  const int t = blockIdx.x;
  const int d = p.head_dim;
  const int half = d / 2;
  const float pos = static_cast<float>(p.positions[t]);
  const int64_t slot = p.slots == nullptr ? t : p.slots[t];
  const T* row = static_cast<const T*>(p.qkv) + t * p.qkv_row_stride;
  const int rotated = (p.q_heads + p.kv_heads) * half;
  for (int idx = threadIdx.x; idx < rotated; idx += blockDim.x) {
    const int h = idx / half;
    const int j = idx - h * half;
    T* dst;
    if (h < p.q_heads) {
      dst = static_cast<T*>(p.q_out) + t * p.q_out_row_stride + static_cast<int64_t>(h) * d;
    } else if (slot >= 0) {
      dst = static_cast<T*>(p.k_dst) + slot * p.dst_slot_stride + (h - p.q_heads) * p.dst_head_stride;
    } else {
      continue;
    }
    float sn, cs;
    sincosf(pos * p.inv_freq[j], &sn, &cs);
    cs *= p.attention_scaling;
    sn *= p.attention_scaling;
    const T* src = row + static_cast<int64_t>(h) * d;
    const float x1 = to_f(src[j]);
    const float x2 = to_f(src[j + half]);
    dst[j] = from_f<T>(x1 * cs - x2 * sn);
    dst[j + half] = from_f<T>(x2 * cs + x1 * sn);
  }
  if (slot < 0) return;
  const T* v = row + static_cast<int64_t>(p.q_heads + p.kv_heads) * d;
  for (int idx = threadIdx.x; idx < p.kv_heads * d; idx += blockDim.x) {
    const int h = idx / d;
    const int j = idx - h * d;
    static_cast<T*>(p.v_dst)[slot * p.dst_slot_stride + h * p.dst_head_stride + j] = v[idx];
  }
}

__device__ __forceinline__ float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
}

template <typename T>
__device__ void gated_act(const GatedActParams& p) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.inter;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / p.inter;
    const int64_t c = i - r * p.inter;
    const T* in = static_cast<const T*>(p.gate_up) + r * p.in_row_stride;
    const float g = to_f(in[c]);
    const float u = to_f(in[p.inter + c]);
    const float a = p.act == 0 ? g / (1.f + expf(-g)) : gelu_tanh(g);
    static_cast<T*>(p.out)[r * p.out_row_stride + c] = from_f<T>(round_to<T>(a) * u);
  }
}

}  // namespace flashdjl_fused

#define FLASHDJL_FUSED(NAME, T)                                                                        \
  extern "C" __global__ void __launch_bounds__(flashdjl_fused::kNormThreads)                          \
      rms_norm_##NAME(const RmsNormParams p) {                                                         \
    flashdjl_fused::rms_norm<T>(p);                                                                    \
  }                                                                                                    \
  extern "C" __device__ int rms_norm_##NAME##_cfg[4] = {flashdjl_fused::kNormThreads, 0, 1, 1};       \
  extern "C" __global__ void __launch_bounds__(flashdjl_fused::kRopeThreads)                          \
      rope_store_##NAME(const RopeStoreParams p) {                                                     \
    flashdjl_fused::rope_store<T>(p);                                                                  \
  }                                                                                                    \
  extern "C" __device__ int rope_store_##NAME##_cfg[4] = {flashdjl_fused::kRopeThreads, 0, 1, 1};     \
  extern "C" __global__ void __launch_bounds__(flashdjl_fused::kActThreads)                           \
      gated_act_##NAME(const GatedActParams p) {                                                       \
    flashdjl_fused::gated_act<T>(p);                                                                   \
  }                                                                                                    \
  extern "C" __device__ int gated_act_##NAME##_cfg[4] = {flashdjl_fused::kActThreads, 0, 1, 1};

FLASHDJL_FUSED(fp16, __half)
FLASHDJL_FUSED(bf16, __nv_bfloat16)
FLASHDJL_FUSED(fp32, float)
