// FlashDJL: the one definition of the attention semantics (visibility / score rule, tile ranges),
// shared by flash_fwd.cu (sm80, mma.sync) and flash_fwd_sm90.cu (sm90a, wgmma).
// Include it inside namespace flashdjl, after fast_exp2() and the warp shuffles are available
// (both kernel files define their PTX helpers first; the CPU emulation provides its own).
#pragma once

// plain: no mask; causal: bottom-right causal only; general: every option of the mask params at bottom-right
// positions (paged: keys from mask.key_offset); positioned: general at the mask params' positions
// (mask.key_offset, mask.query_shift), a separate instantiation so that the general kernels keep their registers;
// packed: plain with GQA packing (sm90 only): one CTA serves the G = hq / hkv query heads of a key/value head, its
// rows r = i * G + g standing for (query i, head h * G + g), so that a few queries fill a whole row tile and the
// key/value tiles are read once per key/value head (grid y = hkv; dense queries only).
// kCausalAlibi: the causal mask and ALiBi, nothing else (sm90 hd 64 / 128: the causal pipeline with the ALiBi key term
// on the tensor cores, persistent form included)
// kCausalSoftcap: the causal mask and softcap (mask.softcap), nothing else (sm90 hd 64 / 128: the causal pipeline with
// the general kernel's softcap walks, persistent form included). Softcap alone runs the general kernel: a
// plain-pipeline kernel for it read 2-4 % slower than the general one (docs/PERF.md, run 128).
enum Variant : int {
  kPlain = 0,
  kCausal = 1,
  kGeneral = 2,
  kPositioned = 3,
  kPacked = 4,
  kCausalAlibi = 5,
  kCausalSoftcap = 6
};
// the variants whose kernel applies the bottom-right causal rule whatever the params say
template <int V>
constexpr bool kCausalVariant = V == kCausal || V == kCausalAlibi || V == kCausalSoftcap;

// amp * tanh(x) given e = 2^(-2 |x| log2(e)) (a caller may fold a scale of x into that exponent): with y = 1 + e in
// (1, 2], tanh|x| = (1 - e) / (1 + e) = 2 / y - 1. One MUFU op (the caller's ex2); the reciprocal runs on the FMA pipe,
// which the softmax leaves idle, where the MUFU pipe is already the busier one: a linear seed (relative error <= 1/17
// on [1, 2]) and three Newton steps (the error squares: 3.5e-3, 1.2e-5, 1.5e-10) give 1 / y to float rounding, so the
// absolute error is ~1e-7 * amp (tanh.approx.f32 would be ~1e-3 * amp, too coarse once amp = softcap). NaN stays NaN,
// |x| = inf gives +-amp.
__device__ __forceinline__ float scaled_tanh_from_exp2(float e, float x, float amp) {
  const float y = 1.f + e;
  float r = fmaf(y, -8.f / 17.f, 24.f / 17.f);
  r = fmaf(r, fmaf(-y, r, 1.f), r);
  r = fmaf(r, fmaf(-y, r, 1.f), r);
  r = fmaf(r, fmaf(-y, r, 1.f), r);
  return copysignf(fmaf(2.f * amp, r, -amp), x);
}
__device__ __forceinline__ float accurate_tanh(float x) {
  return scaled_tanh_from_exp2(fast_exp2(fabsf(x) * -2.8853900817779268f), x, 1.f);  // -2 log2(e)
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
// The same over aligned segments of kLanes lanes (a power of two <= 32); quad_max / quad_sum are the 4-lane case
// with full-warp shuffles, kept as they are (their SASS is the measured one).
template <int kLanes>
__device__ __forceinline__ float segment_max(float x) {
#pragma unroll
  for (int o = kLanes / 2; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o, kLanes));
  return x;
}
template <int kLanes>
__device__ __forceinline__ float segment_sum(float x) {
#pragma unroll
  for (int o = kLanes / 2; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o, kLanes);
  return x;
}

// ------------------------------ sequence geometry of a dense or varlen call ----------------------
// Sequence b of a FlashFwdParams call: each side is varlen when its cu_seqlens pointer is set (its rows start at
// q0 / k0 of the packed tensor), else dense with the call's lq / lk (one sequence per batch index).
struct SeqGeometry {
  bool varlen_q, varlen_k;
  int lq, lk;  // this sequence's query / key lengths
  int q0, k0;  // first packed row (varlen), 0 when dense
};

// Element offset of sequence `batch`'s first row of head `head` in a [batch, rows, heads, D] tensor (dense: strides
// bs / rs / hs) or a packed [total rows, heads, D] one (varlen: the sequence starts at packed row row0).
__device__ __forceinline__ int64_t seq_offset(bool varlen, int batch, int row0, int head, int64_t bs, int64_t hs,
                                              int64_t rs) {
  return (varlen ? row0 * rs : batch * bs) + head * hs;
}

template <class P>
__device__ __forceinline__ SeqGeometry seq_geometry(const P& p, int b) {
  SeqGeometry s;
  s.varlen_q = p.cu_seqlens_q != nullptr;
  s.varlen_k = p.cu_seqlens_k != nullptr;
  s.lq = p.lq;
  s.lk = p.lk;
  s.q0 = 0;
  s.k0 = 0;
  if (s.varlen_q) {
    s.q0 = p.cu_seqlens_q[b];
    s.lq = p.cu_seqlens_q[b + 1] - s.q0;
  }
  if (s.varlen_k) {
    s.k0 = p.cu_seqlens_k[b];
    s.lk = p.cu_seqlens_k[b + 1] - s.k0;
  }
  return s;
}

// ------------------------------ the visibility / bias rule -----------------------------------
// The ONLY implementation of the library's masking semantics. For the plain/causal kernels the
// fields are compile-time constants, so the checks fold away.
struct MaskRule {
  int lk;      // keys of this sequence
  int off;     // Lk - Lq: pos(i) = i + off (bottom-right alignment)
  bool causal;
  int left;    // window left  (< 0: unbounded)
  int right;   // window right (< 0: unbounded)
  int sinks;   // keys j < sinks ignore the left bound
};

__device__ __forceinline__ bool key_visible(const MaskRule& r, int pos, int j) {
  if (j >= r.lk) return false;
  if (r.causal && j > pos) return false;
  if (r.right >= 0 && j > pos + r.right) return false;
  if (r.left >= 0 && j < pos - r.left && j >= r.sinks) return false;
  return true;
}

// The rule of one sequence of a flash call (bottom-right: query row i sits at position i + Lk - Lq). plain / causal:
// that mask alone; general / positioned: every option of the mask params, positioned also at the params' query shift.
// Sinks are global key indices: calls whose local key 0 is global key key_offset (positioned, paged) move them to
// local coordinates (`keys_offset`); a plain dense general call's keys start at global key 0.
template <int kVariant>
__device__ __forceinline__ MaskRule flash_rule(const MaskParams& m, int lk, int lq, bool keys_offset) {
  MaskRule r;
  r.lk = lk;
  r.off = lk - lq;
  if (kVariant == kGeneral || kVariant == kPositioned) {
    r.causal = m.causal != 0;
    r.left = m.window_left < 0 ? -1 : m.window_left;
    r.right = m.window_right < 0 ? -1 : m.window_right;
    r.sinks = keys_offset || kVariant == kPositioned ? m.sink_tokens - m.key_offset : m.sink_tokens;
    if (kVariant == kPositioned) r.off += m.query_shift;
  } else {
    r.causal = kCausalVariant<kVariant>;
    r.left = -1;
    r.right = -1;
    r.sinks = 0;
  }
  return r;
}

// Which rows of a K/V tile a loader reads: all of them, or (for V) only keys some query row of the block sees.
// A skipped row is zero-filled, so a hidden value contributes nothing whatever its bits: P = 0 for a hidden key,
// but 0 * NaN would be NaN in P.V (uninitialized cache slots, keys outside a window).
struct KeepAllRows {
  __device__ __forceinline__ bool operator()(int) const { return true; }
};
// The keys some query position of [p0, p1] sees under key_visible(): for a fixed key the positions that see it
// form one interval (causal and the right bound give its start, the left bound its end), so over a block of
// positions the visible keys are [0, hi) intersected with [lo, inf) u [0, sinks) -- three registers in the loaders.
struct KeepVisibleRows {
  int lo, hi, sinks;
  __device__ __forceinline__ KeepVisibleRows(const MaskRule& r, int p0, int p1) {
    hi = r.lk;
    if (r.causal) hi = min(hi, p1 + 1);
    if (r.right >= 0) hi = min(hi, p1 + r.right + 1);
    lo = r.left >= 0 ? p0 - r.left : 0;
    sinks = r.left >= 0 ? r.sinks : 0;
  }
  __device__ __forceinline__ bool operator()(int j) const { return j < hi && (j >= lo || j < sinks); }
};

// The score of a visible key in log2 units (what the kernels' exp2 softmax takes): s = scale * q.k -> softcap ->
// - slope * |pos - j|, times log2(e). The constants are folded once (construct it outside a hot loop); at<kCap, kAlibi>
// picks the modifiers at compile time (the sm90 kernel's unrolled score loops), apply() at run time. dist = |pos - j|
// as a float (exact: positions stay below 2^24), so a caller walking a row's keys steps it without an int-to-float.
struct ScoreMod {
  float sc_l2;      // scale * log2(e)
  float cap_l2;     // softcap * log2(e), 0 = none
  float cap_e;      // tanh's exponent per |q.k|: -2 log2(e) * scale / softcap (scale > 0 keeps the sign of q.k)
  float nslope_l2;  // -slope * log2(e)
  __device__ __forceinline__ ScoreMod(float scale, float softcap, float slope) {
    constexpr float kL2e = 1.4426950408889634f;
    sc_l2 = scale * kL2e;
    cap_l2 = softcap > 0.f ? softcap * kL2e : 0.f;
    cap_e = softcap > 0.f ? -2.f * kL2e * scale / softcap : 0.f;
    nslope_l2 = -slope * kL2e;
  }
  template <bool kCap>
  __device__ __forceinline__ float capped(float qk) const {  // scale and softcap, log2 units
    return kCap ? scaled_tanh_from_exp2(fast_exp2(fabsf(qk) * cap_e), qk, cap_l2) : qk * sc_l2;
  }
  template <bool kCap, bool kAlibi>
  __device__ __forceinline__ float at(float qk, float dist) const {
    float x = capped<kCap>(qk);
    if (kAlibi) x = fmaf(nslope_l2, dist, x);
    return x;
  }
  __device__ __forceinline__ float apply(float qk, float dist) const {
    return cap_l2 > 0.f ? at<true, true>(qk, dist) : at<false, true>(qk, dist);
  }
};
// Softcap's tanh without a MUFU op, for scores with |u| <= 1 (u = scale q.k / softcap: a logit within the cap):
// tanh(u) = u P(u^2), P of degree 6 (the odd degree-13 least-maximum-error fit of tanh on [-1, 1]; fit error 2e-8),
// so capped(qk) = (cap_l2 u) P(u^2) is ScoreMod::capped<true>(qk) in log2 units with 10 FMA-pipe ops and no MUFU op;
// absolute error <= 2.6e-7 cap_l2 in float (flash_emu_test's sweep; ScoreMod's ex2 + Newton form: ~1.8e-7). The sm90
// kernels take it on a warp's key tile when every |q.k| of it is within range (their other MUFU op per score is the
// softmax's exp2), else ScoreMod. Built from the ScoreMod of the call (no constants of its own held in registers).
struct CapPoly {
  float a;      // scale / softcap: u = a q.k
  float a_l2;   // a cap_l2: the capped score is (a_l2 q.k) P(u^2)
  __device__ __forceinline__ explicit CapPoly(const ScoreMod& mod)
      : a(mod.cap_e * -0.34657359027997264f), a_l2(mod.sc_l2) {}  // cap_e / (-2 log2 e)
  // P(u^2) = tanh(u) / u; the coefficients are immediates of the FMAs (no registers held across the walk)
  static __device__ __forceinline__ float poly(float u) {
    const float t = u * u;
    float r = fmaf(9.637580570e-04f, t, -5.951235815e-03f);
    r = fmaf(r, t, 1.997322850e-02f);
    r = fmaf(r, t, -5.326580381e-02f);
    r = fmaf(r, t, 1.331958281e-01f);
    r = fmaf(r, t, -3.333212922e-01f);
    return fmaf(r, t, 9.999996931e-01f);
  }
  // Tiles well inside the cap (every |u| <= kShortLim) take the odd degree-7 least-maximum-error fit on [-0.45, 0.45]
  // (fit error 5e-8), folded (ShortFolded below).
  static constexpr float kShortLim = 0.45f;
  // The shorter fits below are evaluated folded: an odd fit's N coefficients k_i multiplied once per tile by
  // sc_l2 a^(2i) (fold()), so that the capped score is q.k Q(q.k^2), Q(t) = sum c_i t^i: the square, N - 1 FMAs and one
  // FMA with the max's subtraction, three ops fewer than the same fit in u (u, the scale, the product).
  // usable(): the folded coefficients are normal floats (a = scale / softcap not vanishingly small), else the caller
  // takes a fit in u. Float error within the 4e-7 cap_l2 bound of the fits in u (flash_emu_test, each fit).
  template <int N>
  struct Folded {
    float c[N];  // sc_l2 k_i a^(2i)
    __device__ __forceinline__ float q(float qk) const {  // Q(qk^2)
      const float t = qk * qk;
      float r = c[N - 1];
#pragma unroll
      for (int i = N - 2; i >= 0; --i) r = fmaf(r, t, c[i]);
      return r;
    }
    __device__ __forceinline__ float capped(float qk) const { return qk * q(qk); }
    __device__ __forceinline__ float capped_minus(float qk, float m) const {  // capped(qk) - m, the last op one FMA
      return fmaf(qk, q(qk), -m);
    }
    __device__ __forceinline__ bool usable() const { return fabsf(c[N - 1]) >= 1e-30f; }
  };
  template <int N>
  __device__ __forceinline__ Folded<N> fold(const float (&k)[N]) const {
    const float a2 = a * a;
    Folded<N> f;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      f.c[i] = k[i] * a_l2;
#pragma unroll
      for (int j = 0; j < i; ++j) f.c[i] *= a2;
    }
    return f;
  }
  // Tiles deep inside the cap (every |u| <= kTinyLim): the odd degree-5 least-maximum-error fit on [-0.25, 0.25] (fit
  // error 5e-8), four FMA-pipe ops with the max's subtraction (the short fit's seven); float error <= 2.3e-7 cap_l2.
  // c0, c2 > 0 (scale > 0): capped_minus(-inf) = -inf, so masked tiles may take it (hidden keys set to -inf first).
  static constexpr float kTinyLim = 0.25f;
  using Tiny = Folded<3>;
  __device__ __forceinline__ Tiny tiny() const {
    const float k[3] = {9.999986291e-01f, -3.331570029e-01f, 1.276223212e-01f};
    return fold(k);
  }
  // Tiles deeper still (every |u| <= kMicroLim): the odd degree-3 least-maximum-error fit on [-0.11, 0.11] (fit error
  // 1.2e-7), three FMA-pipe ops with the max's subtraction (Tiny's four). c1 < 0, so -inf would come out as +inf: a
  // tile with a hidden key takes Tiny instead.
  static constexpr float kMicroLim = 0.11f;
  using Micro = Folded<2>;
  __device__ __forceinline__ Micro micro() const {
    const float k[2] = {9.999937415e-01f, -3.312996030e-01f};
    return fold(k);
  }
  // The short fit (|u| <= kShortLim) folded: five FMA-pipe ops a score with the max's subtraction (the same fit in u
  // would take seven). c3 < 0, so -inf would come out as +inf: tiles with a hidden key do not take it.
  using ShortFolded = Folded<4>;
  __device__ __forceinline__ ShortFolded short_folded() const {
    const float k[4] = {9.999989515e-01f, -3.332630052e-01f, 1.320517700e-01f, -4.514955409e-02f};
    return fold(k);
  }
  __device__ __forceinline__ float capped(float qk) const {  // softcap tanh(scale qk / softcap), log2 units
    return (qk * a_l2) * poly(qk * a);
  }
  __device__ __forceinline__ float capped_minus(float qk, float m) const {  // capped(qk) - m, the last op one FMA
    return fmaf(qk * a_l2, poly(qk * a), -m);
  }
};
// Softcap's range pass on a tile without a hidden key (the sm90 softcap walk): the raw max and min of the scores of
// one row that a thread holds, s[4 j + 2 hh] and s[4 j + 2 hh + 1] for j < kJ, from the pairs rounded to bfloat16x2
// (one cvt a pair) and their running max / min (one op a pair each): 1.5 ops a score where the exact pass spends two
// FMNMX (|s| for the range test, s for the row max). Round to nearest in bfloat16 (unit roundoff u = 2^-8) gives
// x = x_b (1 + d) with |d| <= u, so packed_range_bound() = max |x_b| (1 + u) >= every |s| (the tier tests stay sound;
// normal floats: a subnormal score may round below its bound, far under every tier's limit), and mx is within 2^-8
// of the exact row max (the softmax's reference m may take it: P of the row's top score is 2^(+-tiny), the LSE
// m + log2 l stays exact). NaN is ignored (as by fmaxf); an infinite score makes the bound infinite.
struct RowRange {
  float mx, mn;
};
template <int kJ>
__device__ __forceinline__ RowRange packed_row_range(const float* s, int hh) {
  __nv_bfloat162 hi2 = __floats2bfloat162_rn(s[2 * hh], s[2 * hh + 1]), lo2 = hi2;
#pragma unroll
  for (int j = 1; j < kJ; ++j) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]);
    hi2 = __hmax2(hi2, v);
    lo2 = __hmin2(lo2, v);
  }
  return {fmaxf(__low2float(hi2), __high2float(hi2)), fminf(__low2float(lo2), __high2float(lo2))};
}
// >= every |s| of the rows whose packed_row_range() gave mx0 / mx1 and (the smaller) mn
__device__ __forceinline__ float packed_range_bound(float mx0, float mx1, float mn) {
  return fmaxf(fmaxf(mx0, mx1), -mn) * (1.f + 0x1p-8f);
}
__device__ __forceinline__ float transform_score_l2(float qk, float scale, float softcap, float slope, int pos, int j) {
  return ScoreMod(scale, softcap, slope).apply(qk, fabsf(static_cast<float>(pos - j)));
}

// Key tiles a query block [m0, m_end) has to visit, derived from the same rule: the union of
// [n_lo, n_hi) (causal/window range) and [0, sink_tiles) (sinks), walked downwards.
struct TileRange {
  int n_lo, n_hi, sink_tiles;
  __device__ __forceinline__ int first() const { return n_hi > n_lo ? n_hi - 1 : sink_tiles - 1; }
  __device__ __forceinline__ int next(int n) const {
    int nn = n - 1;
    if (nn >= sink_tiles && nn < n_lo) nn = sink_tiles - 1;
    return nn;
  }
};

template <int Bc>
__device__ __forceinline__ TileRange tile_range(const MaskRule& r, int m0, int m_end) {
  const int pos_first = m0 + r.off, pos_last = m_end - 1 + r.off;
  int hi = r.lk;  // exclusive key bound
  if (r.causal) hi = min(hi, pos_last + 1);
  if (r.right >= 0) hi = min(hi, pos_last + r.right + 1);
  int lo = 0;
  int sink_keys = 0;
  if (r.left >= 0) {
    lo = max(0, pos_first - r.left);
    sink_keys = min(r.sinks, hi);
  }
  TileRange t;
  t.n_hi = hi > 0 ? (hi + Bc - 1) / Bc : 0;
  t.n_lo = lo / Bc;
  t.sink_tiles = sink_keys > 0 ? (sink_keys + Bc - 1) / Bc : 0;
  return t;
}

// True when every key of tile n is visible to every row of [m0, m_end), so no mask pass is
// needed. The rule is monotone in pos: the upper bounds (Lk, causal, right) are tightest at the
// first row and the last key; the left bound is tightest at the last row and the first key that
// is not a sink.
template <int Bc>
__device__ __forceinline__ bool tile_all_visible(const MaskRule& r, int n, int m0, int m_end) {
  const int j0 = n * Bc, j1 = n * Bc + Bc - 1;
  return key_visible(r, m0 + r.off, j1) &&
         key_visible(r, m_end - 1 + r.off, min(max(j0, r.sinks), j1));
}
