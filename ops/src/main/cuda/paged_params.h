// FlashDJL: the one parameter block of the paged decode kernels (paged_decode.cu), passed by value.
// The Java side (org.flashdjl.ops.cuda.PagedDecodeKernel.LAYOUT) packs exactly this layout,
// little-endian, natural C alignment; the static_asserts pin it and a unit test reads them.
#pragma once
#include <stdint.h>
#include <stddef.h>

#include "mask_params.h"

struct PagedDecodeParams {
  // ---- device pointers ----
  const void* q;              // [B, Hq, D] (strides below, head-dim stride 1)
  const void* k_pages;        // [numPages, pageSize, Hkv, D]; page stride = page_size * row stride
  const void* v_pages;        // like k_pages (same strides)
  void* o;                    // [B, Hq, D], q's dtype
  float* lse;                 // [B, Hq] fp32 natural log, nullptr = not wanted
  float* partial_o;           // [B, num_splits, Hq, D] fp32 scratch when num_splits > 1
  float* partial_lse;         // [B, num_splits, Hq] fp32 scratch when num_splits > 1
  const int32_t* page_indptr; // [B + 1] CSR page offsets
  const int32_t* page_indices;// [page_indptr[B]] page ids
  const int32_t* seq_lens;    // [B] tokens per sequence
  const float* alibi_slopes;  // [Hq] or nullptr
  int32_t* split_counters;    // [B * Hkv] zero between launches, used when num_splits > 1: the CTA that finishes
                              // a (sequence, kv head) row last merges its splits into o / lse and re-zeroes it
  // ---- strides in elements ----
  int64_t q_batch_stride, q_head_stride;
  int64_t o_batch_stride, o_head_stride;
  int64_t lse_batch_stride;   // lse head stride is 1
  int64_t kv_row_stride;      // elements between consecutive tokens of a page (Hkv * D when dense)
  int64_t kv_head_stride;     // elements between kv heads of one token (D when dense)
  // ---- sizes and options ----
  int32_t batch;        // B
  int32_t hq;           // query heads
  int32_t hkv;          // kv heads, hq % hkv == 0, hq / hkv <= 16
  int32_t head_dim;     // D (must equal the kernel's compiled D)
  int32_t page_size;    // tokens per page, 1..256
  int32_t num_splits;   // CTAs per (sequence, kv head) row (grid x); they share the row's tiles (paged_decode.cu)
  MaskParams mask;      // mask.key_offset: global index of each sequence's first paged key (cascade suffix);
                        // causal and right windows are no-ops for decode (the query is the last token)
};

static_assert(offsetof(PagedDecodeParams, q_batch_stride) == 96, "PagedDecodeParams layout");
static_assert(offsetof(PagedDecodeParams, batch) == 152, "PagedDecodeParams layout");
static_assert(offsetof(PagedDecodeParams, mask) == 176, "PagedDecodeParams layout");
static_assert(sizeof(PagedDecodeParams) == 208, "PagedDecodeParams layout");
