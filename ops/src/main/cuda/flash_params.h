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

// The Hopper kernels (flash_fwd_sm90.cu) take this block instead: the common parameters, then the TMA tensor maps of
// K and V (CUtensorMap: 128 opaque bytes, 64-byte aligned, written by the driver's cuTensorMapEncodeTiled; the Java
// side: org.flashdjl.ops.cuda.TensorMaps). Each map is rank 4, innermost first: {D, rows, heads, batch} with the
// tensor's row / head / batch strides in bytes, box {64, Bc, 1, 1} (Bc = the kernel's key tile, <kernel>_cfg[3]),
// 128-byte swizzle, zero fill out of bounds. Dense: rows = Lk, batch = B; varlen: rows = the tensor's row count,
// batch = 1 (a sequence's key 0 is row cu_seqlens_k[b]). The kernels load only whole key tiles with them (a tile
// with a key past the sequence's end, or a value row the mask hides, goes through cp.async with zero fill), so a
// map's bounds never decide what a kernel reads.
struct alignas(64) FlashTensorMap {
  uint64_t opaque[16];
};
struct FlashFwdSm90Params {
  FlashFwdParams p;
  int32_t tma;           // 1: whole K / V tiles through k_map / v_map; 0: every tile through cp.async (maps unused)
  FlashTensorMap k_map;  // K as above
  FlashTensorMap v_map;  // V as above
};

static_assert(offsetof(FlashFwdSm90Params, tma) == 240, "FlashFwdSm90Params layout");
static_assert(offsetof(FlashFwdSm90Params, k_map) == 256, "FlashFwdSm90Params layout");
static_assert(offsetof(FlashFwdSm90Params, v_map) == 384, "FlashFwdSm90Params layout");
static_assert(sizeof(FlashFwdSm90Params) == 512, "FlashFwdSm90Params layout");
