// FlashDJL: the mask and score options every attention kernel takes, one struct nested in each kernel's
// parameter block (FlashFwdParams, PagedDecodeParams, PagedPrefillParams), so the options are declared, packed
// (org.flashdjl.ops.cuda.KernelStruct: a nested layout) and read (p.mask.x) the same way everywhere. The rule
// they feed is flash_common.cuh's key_visible() / transform_score().
#pragma once
#include <stdint.h>
#include <stddef.h>

struct MaskParams {
  int32_t causal;       // 1 = causal (bottom-right for dense calls)
  int32_t window_left;  // -1 = unbounded
  int32_t window_right; // -1 = unbounded
  int32_t sink_tokens;  // first keys (global indices) that ignore the left window bound
  float scale;          // softmax scale applied to q.k
  float softcap;        // 0 = off, else score = softcap * tanh(score / softcap)
};

static_assert(offsetof(MaskParams, scale) == 16, "MaskParams layout");
static_assert(sizeof(MaskParams) == 24, "MaskParams layout");
