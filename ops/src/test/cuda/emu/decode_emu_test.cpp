// CPU emulation test of paged_decode.cu's kernels (no GPU needed): runs the real kernel source with the helpers of
// flash_emu.h on small paged batches and compares with a double-precision reference. It checks the page-table
// walk (shuffled pages, odd page sizes, NaN in every unused pool slot), the visible-tile ranges (window, sinks, key
// offset), the dealing of a row's 8-tile units to its split CTAs' warps, the cp.async ring, the warp merge and the
// split merge of the row's last CTA (including its counter reset: every case launches twice), on every kernel form of
// the case's head dim (hd 128: the 4-warp, _wide and _compact kernels; hd 256: the 4-warp and the 2-warp _compact
// one; the sm_90-only _wide_pair cluster kernels do not build here). The numerics of the
// real tensor cores are checked by the GPU suite (PagedDecodeGpuTest) and decode_bench.cu.
//   ops/src/test/cuda/emu/run_emu.sh
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define __launch_bounds__(...)
#define __shared__ static  // CTAs run one at a time (see flash_emu.h)
#define FLASHDJL_HOST_EMULATION "../../test/cuda/emu/flash_emu.h"  // relative to paged_decode.cu
#include "../../../main/cuda/paged_decode.cu"

#include "emu_launch.h"

using KernelFn = void (*)(const PagedDecodeParams);

struct Case {
  std::string name;
  bool bf16;
  int d, hq, hkv, page;
  std::vector<int> lens;
  int splits;        // CTAs per row
  int wl, sinks;     // window_left (-1 none), sink tokens
  bool alibi;
  float softcap;
  int koff;          // mask.key_offset
};

// the kernel and its launch config (threads, dynamic smem, ...) as the Java launcher reads them
struct KernelRef { KernelFn fn; int* cfg; };
#define KREF(NAME) {NAME, NAME##_cfg}
// the kernel forms of each head dim the test runs ("" = the 4-warp kernel), [bf16][general]
struct Form { int d; const char* suffix; KernelRef k[2][2]; };
#define FORM(D, SUFFIX)                                                                                    \
  {D, #SUFFIX,                                                                                             \
   {{KREF(paged_decode_fp16_hd##D##_plain##SUFFIX), KREF(paged_decode_fp16_hd##D##_general##SUFFIX)},      \
    {KREF(paged_decode_bf16_hd##D##_plain##SUFFIX), KREF(paged_decode_bf16_hd##D##_general##SUFFIX)}}}
static const Form kForms[] = {FORM(64, ),  FORM(128, ), FORM(128, _wide), FORM(128, _compact),
                              FORM(256, ), FORM(256, _compact)};

// f: one kernel form of the case's head dim (the same reference for every form)
static bool run(const Case& c, const Form& f) {
  const int B = (int)c.lens.size(), D = c.d, G = c.hq / c.hkv;
  const bool general = c.wl >= 0 || c.alibi || c.softcap > 0;
  const KernelRef& k = f.k[c.bf16][general];
  // pages: each sequence's pages, shuffled over the pool, plus unused pages; unused slots hold NaN
  std::vector<int> indptr(B + 1, 0);
  for (int b = 0; b < B; ++b) indptr[b + 1] = indptr[b] + (c.lens[b] + c.page - 1) / c.page;
  const int used = indptr[B], np = used + 3;
  std::vector<int> ids(np);
  for (int i = 0; i < np; ++i) ids[i] = i;
  uint64_t st = 99991 + D * 7 + c.page * 131 + B * 17 + c.splits;
  auto next = [&] { st = st * 6364136223846793005ull + 1442695040888963407ull; return st >> 33; };
  for (int i = np - 1; i > 0; --i) std::swap(ids[i], ids[next() % (i + 1)]);
  std::vector<int> indices(ids.begin(), ids.begin() + used);
  const int64_t row = (int64_t)c.hkv * D;  // NHD: a token's kv heads are adjacent
  const size_t pool = (size_t)np * c.page * row;
  const uint16_t nan = c.bf16 ? 0x7FC0 : 0x7E00;
  std::vector<uint16_t> kp(pool, nan), v(pool, nan), q((size_t)B * c.hq * D), o((size_t)B * c.hq * D, 0xFFFF);
  auto rnd = [&] { return (float)(next() % 20001) / 10000.f - 1.f; };
  for (auto& x : q) x = f2b(rnd() * 2, c.bf16);
  auto slot = [&](int b, int t) { return (int64_t)indices[indptr[b] + t / c.page] * c.page + t % c.page; };
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < c.lens[b]; ++t)
      for (int e = 0; e < row; ++e) {
        kp[slot(b, t) * row + e] = f2b(rnd(), c.bf16);
        v[slot(b, t) * row + e] = f2b(rnd(), c.bf16);
      }
  std::vector<float> lse((size_t)B * c.hq, NAN), slopes(c.hq);
  for (int h = 0; h < c.hq; ++h) slopes[h] = std::pow(2.f, -8.f * (h + 1) / c.hq);
  std::vector<float> po((size_t)B * c.splits * c.hq * D, NAN), pl((size_t)B * c.splits * c.hq, NAN);
  std::vector<int> counters(B * c.hkv, 0);

  PagedDecodeParams p;
  memset(&p, 0, sizeof(p));
  p.q = q.data(); p.k_pages = kp.data(); p.v_pages = v.data(); p.o = o.data(); p.lse = lse.data();
  p.partial_o = po.data(); p.partial_lse = pl.data();
  p.page_indptr = indptr.data(); p.page_indices = indices.data(); p.seq_lens = c.lens.data();
  p.alibi_slopes = c.alibi ? slopes.data() : nullptr;
  p.split_counters = counters.data();
  p.q_batch_stride = (int64_t)c.hq * D; p.q_head_stride = D;
  p.o_batch_stride = (int64_t)c.hq * D; p.o_head_stride = D;
  p.lse_batch_stride = c.hq;
  p.kv_row_stride = row; p.kv_head_stride = D;
  p.batch = B; p.hq = c.hq; p.hkv = c.hkv; p.head_dim = D; p.page_size = c.page; p.num_splits = c.splits;
  p.mask.key_offset = c.koff; p.mask.causal = 1; p.mask.window_left = c.wl; p.mask.window_right = -1;
  p.mask.sink_tokens = c.sinks; p.mask.scale = 1.f / std::sqrt((float)D); p.mask.softcap = c.softcap;

  bool ok = true;
  for (int launch = 0; launch < 2; ++launch) {  // the second launch needs the counters the first left at zero
    std::fill(o.begin(), o.end(), (uint16_t)0xFFFF);
    std::fill(lse.begin(), lse.end(), NAN);
    // grid (num_splits, hkv, batch)
    emu_launch(k.fn, {(unsigned)p.num_splits, (unsigned)p.hkv, (unsigned)p.batch}, k.cfg[0], k.cfg[1], p);
    double max_err = 0, max_lse = 0;
    long bad = 0;
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < c.hq; ++h) {
        const int hk = h / G, len = c.lens[b], pos = c.koff + len - 1;  // query: the last token
        std::vector<double> sc(len, -INFINITY);
        double m = -INFINITY;
        for (int t = 0; t < len; ++t) {
          const int j = c.koff + t;  // global key index
          if (c.wl >= 0 && j < pos - c.wl && j >= c.sinks) continue;
          double dot = 0;
          for (int d = 0; d < D; ++d)
            dot += (double)b2f(q[((size_t)b * c.hq + h) * D + d], c.bf16) * b2f(kp[slot(b, t) * row + hk * D + d], c.bf16);
          double x = dot * p.mask.scale;
          if (c.softcap > 0) x = c.softcap * std::tanh(x / c.softcap);
          if (c.alibi) x -= slopes[h] * std::abs(pos - j);
          sc[t] = x;
          m = std::max(m, x);
        }
        std::vector<double> out(D, 0);
        double l = 0;
        for (int t = 0; t < len; ++t) {
          if (sc[t] == -INFINITY) continue;
          const double e = std::exp(sc[t] - m);
          l += e;
          for (int d = 0; d < D; ++d) out[d] += e * b2f(v[slot(b, t) * row + hk * D + d], c.bf16);
        }
        for (int d = 0; d < D; ++d) {
          const double ref = l > 0 ? out[d] / l : 0;
          const float got = b2f(o[((size_t)b * c.hq + h) * D + d], c.bf16);
          if (!std::isfinite(got)) { ++bad; continue; }
          max_err = std::max(max_err, std::fabs(got - ref));
        }
        const float gl = lse[(size_t)b * c.hq + h];
        if (l == 0) { if (!(std::isinf(gl) && gl < 0)) ++bad; }
        else if (!std::isfinite(gl)) ++bad;
        else max_lse = std::max(max_lse, std::fabs(gl - (m + std::log(l))));
      }
    for (int x : counters) bad += x != 0;  // the row's last CTA re-zeroes its counter
    const double tol = c.bf16 ? 1.5e-2 : 2e-3;
    const bool pass = bad == 0 && max_err <= tol && max_lse <= 1e-3;
    printf("%s %s [hd%d%s] (launch %d): max_err %.2e lse_err %.2e bad %ld\n", pass ? "PASS" : "FAIL",
           c.name.c_str(), f.d, f.suffix, launch + 1, max_err, max_lse, bad);
    fflush(stdout);
    ok = ok && pass;
  }
  return ok;
}

int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";
  // name, bf16, d, hq, hkv, page, lens, splits, window_left, sinks, alibi, softcap, key_offset
  std::vector<Case> cases = {
      {"plain fp16 hd128 G4 no split", false, 128, 8, 2, 16, {37, 1, 0, 200}, 1, -1, 0, false, 0.f, 0},
      {"plain fp16 hd128 G4 3 splits (units dealt round-robin, idle warps)", false, 128, 8, 2, 16, {300, 17, 0},
       3, -1, 0, false, 0.f, 0},
      {"plain fp16 hd128 2 splits, several unit rounds per warp", false, 128, 4, 1, 16, {2100, 999}, 2, -1, 0,
       false, 0.f, 0},
      {"plain bf16 hd64 G8 page 7, 5 splits", true, 64, 8, 1, 7, {513, 64, 3}, 5, -1, 0, false, 0.f, 0},
      {"plain fp16 hd64 MHA page 1", false, 64, 2, 2, 1, {45, 2}, 2, -1, 0, false, 0.f, 0},
      {"general fp16 hd128 window 40 + sinks 4, 4 splits", false, 128, 8, 2, 16, {700, 50, 5}, 4, 40, 4, false, 0.f,
       0},
      {"general bf16 hd128 window + sinks + key offset 9 (cascade suffix)", true, 128, 4, 2, 16, {300, 12}, 3, 64, 20,
       false, 0.f, 9},
      {"general fp16 hd64 alibi + softcap, 3 splits", false, 64, 8, 2, 16, {257, 90}, 3, -1, 0, true, 5.f, 0},
      {"general fp16 hd128 G16 alibi, page 64", false, 128, 16, 1, 64, {1200}, 6, -1, 0, true, 0.f, 0},
      {"plain bf16 hd128 G12 (a part-full second n8 tile of heads), 3 splits", true, 128, 24, 2, 16, {333, 40}, 3, -1,
       0, false, 0.f, 0},
      {"general fp16 hd64 G3 alibi + window, 2 splits", false, 64, 6, 2, 16, {150, 9}, 2, 70, 0, true, 0.f, 0},
      {"plain bf16 hd256 G4 page 16, 3 splits", true, 256, 8, 2, 16, {400, 33, 0}, 3, -1, 0, false, 0.f, 0},
      {"general fp16 hd256 window + sinks + softcap, 2 splits", false, 256, 4, 1, 5, {260, 7}, 2, 50, 3, false, 8.f,
       0},
  };
  int failed = 0, run_n = 0;
  for (const Case& c : cases) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    for (const Form& f : kForms) {  // every form of the case's head dim
      if (f.d != c.d) continue;
      ++run_n;
      failed += !run(c, f);
    }
  }
  printf("%d passed, %d failed\n", run_n - failed, failed);
  return failed == 0 ? 0 : 1;
}
