// FlashDJL: the one parameter block of the paged prefill / append kernels (paged_prefill.cu), passed by
// value. The Java side (org.flashdjl.ops.cuda.PagedPrefillKernel.LAYOUT) packs exactly this layout,
// little-endian, natural C alignment; the static_asserts pin it and a unit test reads them.
#pragma once
#include <stdint.h>
#include <stddef.h>

#include "flash_params.h"  // FlashTensorMap
#include "mask_params.h"

struct PagedPrefillParams {
  // ---- device pointers ----
  const void* q;               // [totalQ, Hq, D] packed by qo_indptr (strides below, head-dim stride 1)
  const void* k_pages;         // [numPages, pageSize, Hkv, D]; page stride = page_size * kv_row_stride
  const void* v_pages;         // like k_pages (same strides)
  void* o;                     // [totalQ, Hq, D], q's dtype
  float* lse;                  // [totalQ, Hq] fp32 natural log (head stride 1), nullptr = not wanted
  const int32_t* qo_indptr;    // [B + 1] first query row of each sequence
  const int32_t* page_indptr;  // [B + 1] CSR page offsets
  const int32_t* page_indices; // [page_indptr[B]] page ids
  const int32_t* seq_lens;     // [B] paged tokens per sequence (Lk_b)
  const float* alibi_slopes;   // [Hq] or nullptr
  // ---- strides in elements ----
  int64_t q_row_stride, q_head_stride;
  int64_t o_row_stride, o_head_stride;
  int64_t lse_row_stride;      // lse head stride is 1
  int64_t kv_row_stride;       // elements between consecutive tokens of a page (Hkv * D when dense)
  int64_t kv_head_stride;      // elements between kv heads of one token (D when dense)
  // ---- sizes and options ----
  int32_t batch;        // B (grid z)
  int32_t hq;           // query heads (grid y)
  int32_t hkv;          // kv heads, hq % hkv == 0
  int32_t lq;           // the longest query run over the batch (grid x = ceil(lq / Br))
  int32_t head_dim;     // D (must equal the kernel's compiled D)
  int32_t page_size;    // tokens per page, 1..256 (any value >= 1 is handled)
  MaskParams mask;      // the general variant's options (the causal variant reads only scale); mask.key_offset:
                        // global index of each sequence's first paged key (cascade suffix)
};

static_assert(offsetof(PagedPrefillParams, q_row_stride) == 80, "PagedPrefillParams layout");
static_assert(offsetof(PagedPrefillParams, batch) == 136, "PagedPrefillParams layout");
static_assert(offsetof(PagedPrefillParams, mask) == 160, "PagedPrefillParams layout");
static_assert(sizeof(PagedPrefillParams) == 192, "PagedPrefillParams layout");

// The Hopper paged kernels (paged_prefill_sm90.cu) take this block: the common parameters, then the TMA tensor maps of
// the K and V pools (Java: org.flashdjl.ops.cuda.TensorMaps). Each map is rank 4, innermost first:
// {D, page_size, Hkv, num_pages} with the pool's token / head / page strides in bytes (pages dense in the pool: page
// stride = page_size * kv_row_stride), box {64, box_rows, 1, 1}, 128-byte swizzle, zero fill out of bounds. box_rows
// is a power of two >= 8 that divides both the page size and the kernel's key tile, so a whole key tile is
// Bc / box_rows boxes (per 64 columns) that each lie inside one page. A tile with a key past the sequence's end, value
// rows the mask hides, pages of fewer than 8 tokens (or not a multiple of 8) and every tile when tma == 0 go through
// cp.async with zero fill.
struct PagedPrefillSm90Params {
  PagedPrefillParams p;
  int32_t tma;           // 1: whole K / V tiles through k_map / v_map; 0: every tile through cp.async (maps unused)
  int32_t box_rows;      // tokens per box (see above); read only when tma == 1
  FlashTensorMap k_map;  // the K pool as above
  FlashTensorMap v_map;  // the V pool as above
};

static_assert(offsetof(PagedPrefillSm90Params, tma) == 192, "PagedPrefillSm90Params layout");
static_assert(offsetof(PagedPrefillSm90Params, box_rows) == 196, "PagedPrefillSm90Params layout");
static_assert(offsetof(PagedPrefillSm90Params, k_map) == 256, "PagedPrefillSm90Params layout");
static_assert(offsetof(PagedPrefillSm90Params, v_map) == 384, "PagedPrefillSm90Params layout");
static_assert(sizeof(PagedPrefillSm90Params) == 512, "PagedPrefillSm90Params layout");
