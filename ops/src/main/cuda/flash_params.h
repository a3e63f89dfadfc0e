// FlashDJL: the one parameter block every flash-attention forward kernel takes (by value).
// The Java side (org.flashdjl.ops.cuda.FlashParams) packs exactly this layout, little-endian,
// natural C alignment; keep both in step (the static_asserts below pin the offsets).
#pragma once
#include <stdint.h>
#include <stddef.h>

#include "mask_params.h"

struct FlashFwdParams {
  // ---- device pointers (8 bytes each) ----
  const void* q;              // [B, Lq, Hq, D] or [B, Hq, Lq, D] (strides below); varlen: [totalQ, Hq, D]
  const void* k;              // [B, Lk, Hkv, D] / [B, Hkv, Lk, D]; varlen: [totalK, Hkv, D]
  const void* v;              // like k
  void* o;                    // like q, same dtype as q
  float* lse;                 // q's shape without D: [B, Hq, Lq] / [B, Lq, Hq]; varlen [totalQ, Hq]; fp32
                              // natural log; nullptr = not wanted
  const int32_t* cu_seqlens_q;  // [B+1] or nullptr (dense)
  const int32_t* cu_seqlens_k;  // [B+1] or nullptr (dense)
  const float* alibi_slopes;    // [Hq] fp32 or nullptr
  // ---- strides in elements (int64); the head-dim stride is always 1 ----
  int64_t q_batch_stride, q_head_stride, q_row_stride;
  int64_t k_batch_stride, k_head_stride, k_row_stride;
  int64_t v_batch_stride, v_head_stride, v_row_stride;
  int64_t o_batch_stride, o_head_stride, o_row_stride;
  int64_t lse_batch_stride, lse_head_stride, lse_row_stride;
  // ---- sizes (int32) ----
  int32_t batch;        // B (varlen: number of sequences)
  int32_t hq;           // query heads
  int32_t hkv;          // key/value heads, hq % hkv == 0
  int32_t lq;           // query length (varlen: max query length over the batch)
  int32_t lk;           // key length   (varlen: max key length over the batch)
  MaskParams mask;      // causal, window, sinks, scale, softcap, positions
  int32_t head_dim;     // D (must equal the kernel's compiled head dim)
};

static_assert(offsetof(FlashFwdParams, q_batch_stride) == 64, "FlashFwdParams layout");
static_assert(offsetof(FlashFwdParams, batch) == 184, "FlashFwdParams layout");
static_assert(offsetof(FlashFwdParams, mask) == 204, "FlashFwdParams layout");
static_assert(sizeof(FlashFwdParams) == 240, "FlashFwdParams layout");
