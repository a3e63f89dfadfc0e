// FlashDJL: the parameter blocks of the fused transformer kernels (fused_ops.cu), passed by value.
// The Java side (org.flashdjl.ops.cuda.FusedKernels, laid out by KernelStruct) packs exactly these
// layouts, little-endian, natural C alignment; the static_asserts below pin them and a unit test
// reads them.
#pragma once
#include <stdint.h>
#include <stddef.h>

// RMSNorm of rows, optionally of (x + residual): sum = x + residual (rounded to T) is written to
// sum_out, then out = norm(sum). style 0 (Llama, Mistral, Qwen2): out = T(T(v * r) * w);
// style 1 (Gemma): out = T(v * r * (1 + w)); r = rsqrt(mean(v^2) + eps), all in fp32.
struct RmsNormParams {
  const void* x;         // [rows, hidden]
  const void* residual;  // [rows, hidden] or nullptr
  const void* weight;    // [hidden]
  void* out;             // [rows, hidden]; may be x itself
  void* sum_out;         // [rows, hidden] when residual != nullptr; may be x or residual itself
  int64_t x_row_stride;
  int64_t residual_row_stride;
  int64_t out_row_stride;
  int64_t sum_row_stride;
  int32_t rows;
  int32_t hidden;
  float eps;
  int32_t style;  // 0: weight * T(normed); 1: T(normed * (1 + weight))
};

static_assert(offsetof(RmsNormParams, x_row_stride) == 40, "RmsNormParams layout");
static_assert(offsetof(RmsNormParams, rows) == 72, "RmsNormParams layout");
static_assert(offsetof(RmsNormParams, style) == 84, "RmsNormParams layout");
static_assert(sizeof(RmsNormParams) == 88, "RmsNormParams layout");

// Rotary embedding (rotate-half / NeoX pairs (j, j + D/2)) of the q and k heads of a packed
// projection row [q heads | k heads | v heads] at each token's position, with the rotated keys and
// the values stored at each token's slot of a key/value destination viewed as [slots, kvHeads, D].
// Angle = position * inv_freq[j] in fp32; cos and sin are multiplied by attention_scaling.
struct RopeStoreParams {
  const void* qkv;          // [tokens, >= (q_heads + 2 kv_heads) * D]
  const int32_t* positions; // [tokens]
  const int32_t* slots;     // [tokens]; nullptr = slot t for token t; a negative slot stores nothing
  const float* inv_freq;    // [D / 2]
  void* q_out;              // [tokens, q_heads, D] (head stride D)
  void* k_dst;              // slot s, head h at k_dst + s * dst_slot_stride + h * dst_head_stride
  void* v_dst;              // same strides as k_dst
  int64_t qkv_row_stride;
  int64_t q_out_row_stride;
  int64_t dst_slot_stride;
  int64_t dst_head_stride;
  int32_t tokens;
  int32_t q_heads;
  int32_t kv_heads;
  int32_t head_dim;
  float attention_scaling;
  int32_t pad0;
};

static_assert(offsetof(RopeStoreParams, qkv_row_stride) == 56, "RopeStoreParams layout");
static_assert(offsetof(RopeStoreParams, tokens) == 88, "RopeStoreParams layout");
static_assert(offsetof(RopeStoreParams, attention_scaling) == 104, "RopeStoreParams layout");
static_assert(sizeof(RopeStoreParams) == 112, "RopeStoreParams layout");

// Gated activation of a packed [gate | up] projection: out = T(T(act(gate)) * up), act in fp32.
struct GatedActParams {
  const void* gate_up;  // [rows, >= 2 * inter]: gate in columns [0, inter), up in [inter, 2 inter)
  void* out;            // [rows, inter]
  int64_t in_row_stride;
  int64_t out_row_stride;
  int32_t rows;
  int32_t inter;
  int32_t act;  // 0: silu; 1: gelu (tanh approximation)
  int32_t pad0;
};

static_assert(offsetof(GatedActParams, in_row_stride) == 16, "GatedActParams layout");
static_assert(offsetof(GatedActParams, rows) == 32, "GatedActParams layout");
static_assert(sizeof(GatedActParams) == 48, "GatedActParams layout");
