// FlashDJL: the one parameter block of the merge-state kernels (merge_state.cu), passed by value.
// The Java side (org.flashdjl.ops.cuda.MergeStateKernel, laid out by KernelStruct) packs exactly this
// layout, little-endian, natural C alignment; the static_asserts below pin it and a unit test reads them.
#pragma once
#include <stdint.h>
#include <stddef.h>

struct MergeStateParams {
  // ---- device pointers ----
  const void* v_a;   // pair: state a [N, H, D]; stacked: the n states [N, n, H, D]
  const float* s_a;  // pair: [N, H]; stacked: [N, n, H]; fp32 natural-log LSE
  const void* v_b;   // pair: state b [N, H, D]; stacked: nullptr
  const float* s_b;  // pair: [N, H]; stacked: nullptr
  void* v_out;       // [N, H, D] (pair: may be v_a itself = in place)
  float* s_out;      // [N, H] (pair: may be s_a itself); nullptr = not wanted
  // ---- strides in elements; the head-dim stride is 1 ----
  int64_t v_a_row_stride, v_a_state_stride, v_a_head_stride;  // state stride: stacked only
  int64_t s_a_row_stride, s_a_state_stride, s_a_head_stride;
  int64_t v_b_row_stride, v_b_head_stride;
  int64_t s_b_row_stride, s_b_head_stride;
  int64_t v_out_row_stride, v_out_head_stride;
  int64_t s_out_row_stride, s_out_head_stride;
  // ---- sizes ----
  int32_t rows;      // N
  int32_t heads;     // H
  int32_t head_dim;  // D
  int32_t states;    // stacked: n >= 1; pair: 2
};

static_assert(offsetof(MergeStateParams, v_a_row_stride) == 48, "MergeStateParams layout");
static_assert(offsetof(MergeStateParams, rows) == 160, "MergeStateParams layout");
static_assert(offsetof(MergeStateParams, states) == 172, "MergeStateParams layout");
static_assert(sizeof(MergeStateParams) == 176, "MergeStateParams layout");
