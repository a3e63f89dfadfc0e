// FlashDJL: the mask and score options every attention kernel takes, one struct nested in each kernel's
// parameter block (FlashFwdParams, PagedDecodeParams, PagedPrefillParams), so the options are declared, packed
// (org.flashdjl.ops.cuda.KernelStruct: a nested layout) and read (p.mask.x) the same way everywhere. The rule
// they feed is flash_common.cuh's key_visible() / ScoreMod.
//
// Positions: local key j of a sequence is global key key_offset + j; local query row i sits at global position
// key_offset + Lk - Lq + query_shift + i (query_shift = 0: bottom-right aligned). Windows, causality and ALiBi
// depend on position - key only, sinks on the global key; so a blockwise caller (ring attention, chunked prefill
// against a cache, a cascade suffix) passes its block's offsets and gets the mask of the whole sequence.
#pragma once
#include <stdint.h>
#include <stddef.h>

// (The field order keeps each kernel's option offsets where they were before positions existed: ptxas's register
// allocation of the hd128/hd256 general kernels depends on them.)
struct MaskParams {
  int32_t key_offset;   // global index of local key 0 (paged: of each sequence's first paged key)
  int32_t causal;       // 1 = causal (bottom-right for dense calls)
  int32_t window_left;  // -1 = unbounded
  int32_t window_right; // -1 = unbounded
  int32_t sink_tokens;  // first keys (global indices) that ignore the left window bound
  float scale;          // softmax scale applied to q.k
  float softcap;        // 0 = off, else score = softcap * tanh(score / softcap)
  int32_t query_shift;  // queries' positions relative to bottom-right alignment (positioned flash kernels)
};

static_assert(offsetof(MaskParams, scale) == 20, "MaskParams layout");
static_assert(offsetof(MaskParams, query_shift) == 28, "MaskParams layout");
static_assert(sizeof(MaskParams) == 32, "MaskParams layout");
