// FlashDJL: a standalone harness for paged decode kernel experiments (not part of the build).
//
// It compiles a decode kernel source into itself (-DDECODE_SRC="path": paged_decode.cu or a variant of it), checks paged_decode_fp16_hd128_plain (or its _wide form, --kernel) against a CPU reference on the benchmark shapes (GQA 32/8,
// hd 128, fp16, pages of 16 tokens in shuffled order), and times it against a 1 GiB device-to-device copy in the
// same process, the way PagedDecodeBench does (events around back-to-back launches, median).
// The kernel source's `extern "C" __device__ int <kernel>_cfg[4] = {...}` does not link into a host program, so the
// harness compiles a copy without the `extern`:
//   sed 's/extern "C" __device__ int/__device__ int/' ops/src/main/cuda/paged_decode.cu > /tmp/pd.cu
//   nvcc -std=c++17 -O3 -arch=sm_90a -I ops/src/main/cuda -DDECODE_SRC='"/tmp/pd.cu"' -o decode_bench \
//     ops/src/test/cuda/decode_bench.cu
// (session 7's runs built it with -ftz=true, as docs/perf-runs/2026-12-02-session7-decode-variants-build.sh does).
//   decode_bench [--reps N] [--tag NAME] [--head-major] [--small] [--pdl] [--trace-all]
//                [--one-table [--pad-counters] [--align-indices] [--align-sections]] [--shape B:L:chunk[,chunk...]]...
//                [--loop N] [--read-probe] [--kernel narrow|wide|compact|auto] [--page-order shuffled|inorder|block:N]
//     --head-major: each kv head's pages contiguous; --small: one 3 x 4999 shape (for compute-sanitizer, with
//     --reps 0: check only, no timing); --pdl: programmatic dependent launches (only for a kernel variant that
//     runs griddepcontrol.wait before it reads its inputs); --one-table: indptr | indices | lens | counters in one
//     int32 buffer, the Java launcher's layout (PagedStepBuffers.upload), instead of four allocations; with it,
//     --pad-counters starts the counters on their own 128-byte line, --align-indices the page indices on one
//     128-byte boundary, --align-sections every section on a 256-byte boundary (cudaMalloc's own alignment).
//     --shape (repeatable) times B sequences of L tokens at the given split chunk sizes instead of the default shapes.
//     --loop N: also time N launches back to back between one pair of events (5 times, median of the per-launch
//     time: ms_loop / pct_copy_loop), the kernel as a model's decode loop runs it, with no event between launches;
//     and the same for an empty kernel of the same grid (ms_empty, ms_empty_loop: what a launch costs around the work).
//     --kernel: the 4-warp paged_decode_fp16_hd128_plain (narrow), its 8-warp _wide form, or (auto, the default) the
//     launcher's choice: _wide when the grid has at most one CTA an SM, _wide_pair (clusters of 2) when it has 2 splits;
//     compact: the _compact kernel that GPUs of 99 KB shared memory a CTA take (timed here on whatever GPU runs it).
//     --page-order: the sequences' pages in the pools shuffled (default), in order, or shuffled within runs of N
//     consecutive pool pages (block:64 = within 2 MiB of each pool: the page table's random order at DRAM and
//     GPU-page granularity told apart).
//     --read-probe: instead of the decode shapes, a kernel that only reads (read_probe_kernel) over the shapes' K / V
//     byte counts and 1 GiB, timed the same way: the ceiling of the decode rows under the benchmark's method.
// A variant that defines DECODE_TRACE records per warp (smid, start, loop end, exit) from %globaltimer into
// g_decode_trace; the harness then prints per-SM busy times, per-CTA warp spreads and CTA loop ends (the time after
// the last CTA streamed its last tile is the merge tail) for the first chunk size of each shape (--trace-all: every
// one).

#ifndef DECODE_SRC
#error "build with -DDECODE_SRC='\"path\"' (a copy of paged_decode.cu without extern on the _cfg arrays; see above)"
#endif
#include DECODE_SRC

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));        \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)

struct Shape {
  int batch, len;
  std::vector<int> chunks;  // split chunk sizes to time (tokens); the first is the planner's
};

static const int kHq = 32, kHkv = 8, kD = 128, kPage = 16;

__global__ void empty_kernel() {}

// --read-probe: the ceiling a kernel that only reads can reach under this benchmark's method. Each CTA streams its own
// contiguous share of n 16-byte words (evict-first loads, kInFlight of them per thread before the first use) and
// folds them into one word, stored only when it equals a value the data never holds (the loads cannot be dropped).
template <int kInFlight>
__global__ void __launch_bounds__(512) read_probe_kernel(const uint4* __restrict__ src, size_t n, uint4* sink) {
  const size_t per = (n + gridDim.x - 1) / gridDim.x;
  const size_t lo = blockIdx.x * per, hi = lo + per < n ? lo + per : n;
  uint32_t acc = 0;
  for (size_t i0 = lo + threadIdx.x; i0 < hi; i0 += size_t(blockDim.x) * kInFlight) {
    uint4 x[kInFlight];
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) {
      const size_t i = i0 + size_t(k) * blockDim.x;
      x[k] = i < hi ? __ldcs(src + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) acc ^= x[k].x ^ x[k].y ^ x[k].z ^ x[k].w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x * blockDim.x + threadIdx.x] = make_uint4(acc, 0, 0, 0);
}

static float h2f(uint16_t h) {
  __half x;
  memcpy(&x, &h, 2);
  return __half2float(x);
}

int main(int argc, char** argv) {
  int reps = 50, loop = 0;
  std::string tag = "decode";
  bool head_major = false;  // pools [Hkv][pages * page][D] (each kv head's pages contiguous) instead of NHD
  bool small = false, pdl = false;  // pdl: launch with programmatic stream serialization (a variant that waits)
  [[maybe_unused]] bool trace_all = false;  // a DECODE_TRACE variant traces every chunk size, not only the first
  std::vector<Shape> custom;  // --shape: replaces the benchmark shapes
  bool one_table = false, pad_counters = false, align_indices = false, align_sections = false;  // the page table's layout (header)
  bool read_probe = false;  // time a read-only kernel over the benchmark shapes' K / V bytes, then exit
  std::string kernel_mode = "auto";  // --kernel narrow | wide | auto
  int page_block = 0;  // --page-order: 0 = every page shuffled, -1 = in order, N > 0 = shuffled within blocks of N
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--pdl")) pdl = true;
    if (!strcmp(argv[i], "--read-probe")) read_probe = true;
    if (!strcmp(argv[i], "--small")) small = true;
    if (!strcmp(argv[i], "--trace-all")) trace_all = true;
    if (!strcmp(argv[i], "--one-table")) one_table = true;
    if (!strcmp(argv[i], "--pad-counters")) pad_counters = true;
    if (!strcmp(argv[i], "--align-indices")) align_indices = true;
    if (!strcmp(argv[i], "--align-sections")) align_sections = true;
    if (!strcmp(argv[i], "--head-major")) head_major = true;
    if (!strcmp(argv[i], "--shape") && i + 1 < argc) {  // B:L:chunk[,chunk...] (repeatable; replaces the defaults)
      Shape sh{0, 0, {}};
      char* rest = nullptr;
      sh.batch = strtol(argv[++i], &rest, 10);
      sh.len = *rest == ':' ? strtol(rest + 1, &rest, 10) : 0;
      while (*rest == ':' || *rest == ',') sh.chunks.push_back(strtol(rest + 1, &rest, 10));
      if (sh.batch <= 0 || sh.len <= 0 || sh.chunks.empty() || *rest != 0) {
        fprintf(stderr, "--shape wants B:L:chunk[,chunk...], got %s\n", argv[i]);
        return 2;
      }
      for (int c : sh.chunks) {
        if (c <= 0 || c % 16 != 0) {
          fprintf(stderr, "--shape: chunk %d is not a positive multiple of 16\n", c);
          return 2;
        }
      }
      custom.push_back(sh);
    }
    // --reps N (>= 0; 0 with --small: check only) and --loop N (>= 0): a whole non-negative integer, else an error
    auto count_arg = [&](const char* name, int& out) {
      char* end = nullptr;
      const long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
      if (i + 1 >= argc || *argv[i + 1] == 0 || *end != 0 || v < 0 || v > 1000000) {
        fprintf(stderr, "%s wants a whole number in [0, 1000000], got %s\n", name, i + 1 < argc ? argv[i + 1] : "nothing");
        return false;
      }
      out = static_cast<int>(v);
      ++i;
      return true;
    };
    if (!strcmp(argv[i], "--reps")) {
      if (!count_arg("--reps", reps)) return 2;
    } else if (!strcmp(argv[i], "--loop")) {
      if (!count_arg("--loop", loop)) return 2;
    } else if (!strcmp(argv[i], "--tag") && i + 1 < argc) {
      tag = argv[++i];
    } else if (!strcmp(argv[i], "--page-order")) {
      const std::string v = i + 1 < argc ? argv[++i] : "";
      char* end = nullptr;
      const long n = v.rfind("block:", 0) == 0 ? strtol(v.c_str() + 6, &end, 10) : 0;
      if (v == "shuffled") {
        page_block = 0;
      } else if (v == "inorder") {
        page_block = -1;
      } else if (n > 0 && n <= (1 << 24) && end != nullptr && *end == 0) {
        page_block = static_cast<int>(n);
      } else {
        fprintf(stderr, "--page-order wants shuffled, inorder or block:N (N in [1, 2^24]), got '%s'\n", v.c_str());
        return 2;
      }
    } else if (!strcmp(argv[i], "--kernel")) {
      kernel_mode = i + 1 < argc ? argv[++i] : "";
      if (kernel_mode != "narrow" && kernel_mode != "wide" && kernel_mode != "compact" && kernel_mode != "auto") {
        fprintf(stderr, "--kernel wants narrow, wide, compact or auto, got '%s'\n", kernel_mode.c_str());
        return 2;
      }
    }
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  // the 4-warp kernel, the 8-warp _wide one and its cluster-of-2 form _wide_pair; --kernel auto (default) picks as
  // PagedDecodeKernel does (the choice is made per shape, below)
  struct KSel { void (*fn)(const PagedDecodeParams); int threads, smem; const char* name; };
  const KSel narrow_k = {paged_decode_fp16_hd128_plain, flashdjl::DecodeTraitsFor<128>::kThreads,
                         flashdjl::DecodeTraitsFor<128>::kSmemBytes, "narrow"};
  const KSel wide_k = {paged_decode_fp16_hd128_plain_wide, flashdjl::DecodeWideTraits128::kThreads,
                       flashdjl::DecodeWideTraits128::kSmemBytes, "wide"};
  const KSel pair_k = {paged_decode_fp16_hd128_plain_wide_pair, flashdjl::DecodeWideTraits128::kThreads,
                       flashdjl::kPairSmemBytes, "wide_pair"};
  const KSel compact_k = {paged_decode_fp16_hd128_plain_compact, flashdjl::DecodeCompactTraitsFor<128>::kThreads,
                          flashdjl::DecodeCompactTraitsFor<128>::kSmemBytes, "compact"};
  for (const KSel* k : {&narrow_k, &wide_k, &pair_k, &compact_k}) {
    CK(cudaFuncSetAttribute(k->fn, cudaFuncAttributeMaxDynamicSharedMemorySize, k->smem));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k->fn, k->threads, k->smem));
    fprintf(stderr, "%s: %s, %d SMs, %s kernel %d threads, %d B smem, %d CTAs/SM\n", tag.c_str(), prop.name,
            prop.multiProcessorCount, k->name, k->threads, k->smem, occ);
  }

  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto median_ms = [&](auto&& launch) {
    if (reps <= 0) return 0.f;
    for (int i = 0; i < 10; ++i) launch();
    CK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> s(reps), e(reps);
    for (int i = 0; i < reps; ++i) {
      CK(cudaEventCreate(&s[i]));
      CK(cudaEventCreate(&e[i]));
    }
    for (int i = 0; i < reps; ++i) {
      CK(cudaEventRecord(s[i]));
      launch();
      CK(cudaEventRecord(e[i]));
    }
    CK(cudaDeviceSynchronize());
    std::vector<float> ms(reps);
    for (int i = 0; i < reps; ++i) {
      CK(cudaEventElapsedTime(&ms[i], s[i], e[i]));
      cudaEventDestroy(s[i]);
      cudaEventDestroy(e[i]);
    }
    std::sort(ms.begin(), ms.end());
    return reps % 2 ? ms[reps / 2] : 0.5f * (ms[reps / 2 - 1] + ms[reps / 2]);
  };
  // loop > 0: the per-launch time of `loop` back-to-back launches between one pair of events (median of 5)
  auto loop_ms = [&](auto&& launch) {
    if (loop <= 0) return 0.f;
    for (int i = 0; i < 10; ++i) launch();
    std::vector<float> ms(5);
    for (float& m : ms) {
      CK(cudaEventRecord(e0));
      for (int i = 0; i < loop; ++i) launch();
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&m, e0, e1));
      m /= loop;
    }
    std::sort(ms.begin(), ms.end());
    return ms[2];
  };
  double copy;
  {
    size_t n = size_t(1) << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 0x3c, n));
    float ms = median_ms([&] { CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice)); });
    copy = ms > 0 ? 2.0 * n / (ms * 1e-3) / 1e9 : 0.0;
    CK(cudaFree(a));
    CK(cudaFree(b));
  }

  if (read_probe) {
    // K + V bytes of 1 x 64k / 8 x 16k / 64 x 4k (GQA 32/8, hd 128, fp16) and the 1 GiB of the copy, read at a few
    // grid sizes (CTAs a multiprocessor) and loads in flight; % of the copy's rate (read + write) as the decode rows
    const size_t sizes[] = {size_t(65536) * kHkv * kD * 2 * 2, size_t(8) * 16384 * kHkv * kD * 2 * 2,
                            size_t(64) * 4096 * kHkv * kD * 2 * 2, size_t(1) << 30};
    void *buf, *sink;
    CK(cudaMalloc(&buf, size_t(1) << 30));
    CK(cudaMemset(buf, 0x3c, size_t(1) << 30));
    CK(cudaMalloc(&sink, size_t(prop.multiProcessorCount) * 4 * 512 * 16));
    for (size_t bytes : sizes) {
      for (int per_sm : {1, 2, 4}) {
        for (int depth : {4, 8}) {
          const int grid = prop.multiProcessorCount * per_sm;
          const size_t n = bytes / 16;
          const float ms = median_ms([&] {
            if (depth == 4) read_probe_kernel<4><<<grid, 512>>>(static_cast<const uint4*>(buf), n, static_cast<uint4*>(sink));
            else read_probe_kernel<8><<<grid, 512>>>(static_cast<const uint4*>(buf), n, static_cast<uint4*>(sink));
          });
          CK(cudaGetLastError());
          const double gbps = ms > 0 ? bytes / (ms * 1e-3) / 1e9 : 0.0;
          printf("{\"impl\":\"read-probe\",\"bytes\":%zu,\"ctas_per_sm\":%d,\"in_flight\":%d,\"ms\":%.4f,"
                 "\"gbps\":%.1f,\"copy_gbps\":%.1f,\"pct_copy\":%.1f}\n",
                 bytes, per_sm, depth, ms, gbps, copy, copy > 0 ? 100 * gbps / copy : 0.0);
        }
      }
    }
    CK(cudaFree(buf));
    CK(cudaFree(sink));
    return 0;
  }

  std::vector<Shape> shapes = {{1, 65536, {2000, 8192, 5472, 4096, 2736, 1376}},
                               {8, 16384, {4096, 16384, 8192, 5472}},
                               {64, 4096, {4096, 2048}}};
  if (small) shapes = {{3, 4999, {5008, 1024, 208}}};  // 1, 5 and 25 splits: one to several unit rounds per warp
  if (!custom.empty()) shapes = custom;
  int failures = 0;
  for (const Shape& sh : shapes) {
    const int B = sh.batch, L = sh.len, pps = (L + kPage - 1) / kPage, np = B * pps;
    const size_t pool = size_t(np) * kPage * kHkv * kD, qn = size_t(B) * kHq * kD;
    std::mt19937_64 rng(7);
    std::vector<uint16_t> hk(pool), hv(pool), hq(qn);
    auto fill = [&](std::vector<uint16_t>& v, uint64_t seed) {
      std::mt19937_64 r(seed);
      std::normal_distribution<float> n;
      const size_t block = 1 << 20;
      std::vector<uint16_t> blk(block);
      for (auto& x : blk) {
        __half h = __float2half(n(r));
        memcpy(&x, &h, 2);
      }
      for (size_t i = 0; i < v.size(); ++i) v[i] = blk[(i * 7919) % block];  // cheap, non-periodic per row
    };
    fill(hk, 1);
    fill(hv, 2);
    fill(hq, 3);
    std::vector<int> ids(np), indptr(B + 1), lens(B, L);
    for (int i = 0; i < np; ++i) ids[i] = i;
    if (page_block == 0) {
      std::shuffle(ids.begin(), ids.end(), rng);
    } else if (page_block > 0) {  // each run of page_block pool pages shuffled in itself, the runs in order
      for (int i = 0; i < np; i += page_block) std::shuffle(ids.begin() + i, ids.begin() + std::min(np, i + page_block), rng);
    }
    for (int b = 0; b <= B; ++b) indptr[b] = b * pps;
    // CPU reference (float accumulation is enough for fp16 inputs at these lengths)
    // element offset of (slot, kv head) in the pools
    auto kv_at = [&](size_t slot, int kvh) {
      return head_major ? (size_t(kvh) * np * kPage + slot) * kD : (slot * kHkv + kvh) * kD;
    };
    std::vector<float> ref(qn);
    {
      std::vector<std::thread> th;
      const int nt = std::max(1u, std::thread::hardware_concurrency());
      for (int t = 0; t < nt; ++t) {
        th.emplace_back([&, t] {
          std::vector<double> sc(L);
          for (int row = t; row < B * kHq; row += nt) {
            const int b = row / kHq, h = row % kHq, kvh = h / (kHq / kHkv);
            const uint16_t* q = &hq[(size_t(b) * kHq + h) * kD];
            float qf[kD];
            for (int d = 0; d < kD; ++d) qf[d] = h2f(q[d]);
            double mx = -INFINITY;
            for (int j = 0; j < L; ++j) {
              const size_t slot = size_t(ids[indptr[b] + j / kPage]) * kPage + j % kPage;
              const uint16_t* k = &hk[kv_at(slot, kvh)];
              double s = 0;
              for (int d = 0; d < kD; ++d) s += double(qf[d]) * h2f(k[d]);
              sc[j] = s / std::sqrt(double(kD));
              mx = std::max(mx, sc[j]);
            }
            double o[kD] = {0}, sum = 0;
            for (int j = 0; j < L; ++j) {
              const double w = std::exp(sc[j] - mx);
              sum += w;
              const size_t slot = size_t(ids[indptr[b] + j / kPage]) * kPage + j % kPage;
              const uint16_t* v = &hv[kv_at(slot, kvh)];
              for (int d = 0; d < kD; ++d) o[d] += w * h2f(v[d]);
            }
            for (int d = 0; d < kD; ++d) ref[size_t(row) * kD + d] = float(o[d] / sum);
          }
        });
      }
      for (auto& x : th) x.join();
    }
    void *dk, *dv, *dq, *dout;
    int *dptr, *dids, *dlens, *dcnt;
    float *dlse, *pO, *pL;
    int maxSplits = 1;  // partial buffers for the most splits any timed chunk size makes
    for (int c : sh.chunks) maxSplits = std::max(maxSplits, (L + c - 1) / c);
    CK(cudaMalloc(&dk, pool * 2));
    CK(cudaMalloc(&dv, pool * 2));
    CK(cudaMalloc(&dq, qn * 2));
    CK(cudaMalloc(&dout, qn * 2));
    CK(cudaMalloc(&dlse, size_t(B) * kHq * 4));
    CK(cudaMalloc(&pO, size_t(B) * maxSplits * kHq * kD * 4));
    CK(cudaMalloc(&pL, size_t(B) * maxSplits * kHq * 4));
    int* dtable = nullptr;  // --one-table: PagedStepBuffers' upload [B + 1 | np | B | 2 B Hkv]
    if (one_table) {
      auto up64 = [](int n) { return (n + 63) / 64 * 64; };  // --align-sections: every section on 256 bytes
      CK(cudaMalloc(&dtable, size_t(up64(B + 1) + up64(np) + up64(B) + 2 * B * kHkv + 64) * 4));
      dptr = dtable;
      dids = dptr + (align_sections ? up64(B + 1) : align_indices ? (B + 1 + 31) / 32 * 32 : B + 1);
      dlens = dids + (align_sections ? up64(np) : np);
      dcnt = dlens + (align_sections ? up64(B) : B);
      if (pad_counters) dcnt = dlens + B + 32 - (dlens + B - dtable) % 32;
    } else {
      CK(cudaMalloc(&dptr, (B + 1) * 4));
      CK(cudaMalloc(&dids, np * 4));
      CK(cudaMalloc(&dlens, B * 4));
      CK(cudaMalloc(&dcnt, 2 * B * kHkv * 4));  // merge counters, then unit counters
    }
    CK(cudaMemset(dcnt, 0, 2 * B * kHkv * 4));
    CK(cudaMemcpy(dk, hk.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv, hv.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dq, hq.data(), qn * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dptr, indptr.data(), (B + 1) * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dids, ids.data(), np * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dlens, lens.data(), B * 4, cudaMemcpyHostToDevice));
    for (size_t ci = 0; ci < sh.chunks.size(); ++ci) {
      const int chunk = sh.chunks[ci], splits = (L + chunk - 1) / chunk;
      const bool one_wave = int64_t(splits) * kHkv * B <= prop.multiProcessorCount;
      // auto: the launcher's rule (_wide for one wave; its cluster-of-2 form _wide_pair when that wave has 2 splits)
      const KSel& ks = kernel_mode == "compact" ? compact_k
                       : kernel_mode == "wide" || (kernel_mode == "auto" && one_wave)
                           ? (kernel_mode == "auto" && splits == 2 ? pair_k : wide_k)
                           : narrow_k;
      const auto kern = ks.fn;
      const int cfg[2] = {ks.threads, ks.smem};
      PagedDecodeParams p;
      memset(&p, 0, sizeof(p));
      p.q = dq;
      p.k_pages = dk;
      p.v_pages = dv;
      p.o = dout;
      p.lse = dlse;
      p.partial_o = pO;
      p.partial_lse = pL;
      p.page_indptr = dptr;
      p.page_indices = dids;
      p.seq_lens = dlens;
      p.split_counters = dcnt;
      p.q_batch_stride = kHq * kD;
      p.q_head_stride = kD;
      p.o_batch_stride = kHq * kD;
      p.o_head_stride = kD;
      p.lse_batch_stride = kHq;
      p.kv_row_stride = head_major ? kD : kHkv * kD;
      p.kv_head_stride = head_major ? size_t(np) * kPage * kD : kD;
      p.batch = B;
      p.hq = kHq;
      p.hkv = kHkv;
      p.head_dim = kD;
      p.page_size = kPage;
      p.num_splits = splits;
      p.mask.scale = 1.f / std::sqrt(float(kD));
      p.mask.window_left = -1;
      p.mask.window_right = -1;
      p.mask.softcap = 0.f;
#ifdef DECODE_KVH_FIRST  // the variant reads split = blockIdx.x / hkv, kv head = blockIdx.x % hkv
      const dim3 grid(splits * kHkv, 1, B);
#else
      const dim3 grid(splits, kHkv, B);
#endif
      auto launch = [&] {
        if (!pdl) {
          kern<<<grid, cfg[0], cfg[1]>>>(p);
          return;
        }
        // programmatic dependent launch: this grid may be scheduled before the previous kernel in the stream has
        // finished; a kernel built for it waits (griddepcontrol.wait) before it reads anything
        cudaLaunchConfig_t lc = {};
        lc.gridDim = grid;
        lc.blockDim = dim3(cfg[0]);
        lc.dynamicSmemBytes = cfg[1];
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        lc.attrs = at;
        lc.numAttrs = 1;
        CK(cudaLaunchKernelEx(&lc, kern, p));
      };
      // one launch into NaN-poisoned output against the reference: the max abs error (inf for NaN)
      auto check = [&] {
        CK(cudaMemset(dout, 0xff, qn * 2));  // NaN poison
        launch();
        CK(cudaDeviceSynchronize());
        std::vector<uint16_t> out(qn);
        CK(cudaMemcpy(out.data(), dout, qn * 2, cudaMemcpyDeviceToHost));
        double e_max = 0;
        for (size_t i = 0; i < qn; ++i) {
          const double e = std::fabs(double(h2f(out[i])) - ref[i]);
          e_max = std::isnan(e) ? INFINITY : std::max(e_max, e);
        }
        return e_max;
      };
      double err = check();
#ifdef DECODE_TRACE
      if (ci == 0 || trace_all) {
        const int ctas = grid.x * grid.y * grid.z, warps = ctas * (cfg[0] / 32);
        unsigned long long* dtr;
        CK(cudaMalloc(&dtr, size_t(warps) * 4 * 8));
        CK(cudaMemcpyToSymbol(flashdjl::g_decode_trace, &dtr, sizeof(dtr)));
#ifdef DECODE_MERGE_TRACE
        // a variant that also defines g_merge_trace: the merging CTA's tid 0 writes up to kMergeStamps %globaltimer
        // stamps per row (B * Hkv rows) in the order its code passes them (the variant says what each one marks);
        // printed: the row's last warp loop end -> stamp 0, the gaps between consecutive stamps, last stamp -> exit
        constexpr int kMergeStamps = 16;
        const int rows = grid.y * grid.z;
        unsigned long long* dmt;
        CK(cudaMalloc(&dmt, size_t(rows) * kMergeStamps * 8));
        CK(cudaMemset(dmt, 0, size_t(rows) * kMergeStamps * 8));
        CK(cudaMemcpyToSymbol(flashdjl::g_merge_trace, &dmt, sizeof(dmt)));
#endif
        for (int i = 0; i < 5; ++i) launch();
        CK(cudaDeviceSynchronize());
        std::vector<unsigned long long> tr(size_t(warps) * 4);
        CK(cudaMemcpy(tr.data(), dtr, tr.size() * 8, cudaMemcpyDeviceToHost));
#ifdef DECODE_MERGE_TRACE
        if (splits > 1) {
          std::vector<unsigned long long> mt(size_t(rows) * kMergeStamps);
          CK(cudaMemcpy(mt.data(), dmt, mt.size() * 8, cudaMemcpyDeviceToHost));
          std::vector<std::vector<double>> gaps(kMergeStamps + 1);  // [0] loop end -> stamp 0, [k] stamp k-1 -> k
          const int wpc_ = cfg[0] / 32;
          for (int r = 0; r < rows; ++r) {
            const unsigned long long* m = &mt[size_t(r) * kMergeStamps];
            if (!m[0]) continue;
            unsigned long long last_loop = 0, last_exit = 0;
            for (int x = 0; x < (int)grid.x; ++x)
              for (int w = 0; w < wpc_; ++w) {
                const unsigned long long* t = &tr[((size_t(r) * grid.x + x) * wpc_ + w) * 4];
                last_loop = std::max(last_loop, t[2]);
                last_exit = std::max(last_exit, t[3]);
              }
            gaps[0].push_back(double(m[0]) - double(last_loop));
            int k = 1;
            for (; k < kMergeStamps && m[k]; ++k) gaps[k].push_back(double(m[k]) - double(m[k - 1]));
            gaps[kMergeStamps].push_back(double(last_exit) - double(m[k - 1]));
          }
          printf("{\"tag\":\"%s\",\"merge_trace\":1,\"batch\":%d,\"L\":%d,\"splits\":%d,\"rows\":%zu,"
                 "\"gaps_med_max_us\":[", tag.c_str(), B, L, splits, gaps[0].size());
          bool first = true;
          for (auto& v : gaps) {
            if (v.empty()) continue;
            std::sort(v.begin(), v.end());
            printf("%s[%.2f,%.2f]", first ? "" : ",", v[v.size() / 2] / 1e3, v.back() / 1e3);
            first = false;
          }
          printf("]}\n");
        }
        unsigned long long* mnone = nullptr;
        CK(cudaMemcpyToSymbol(flashdjl::g_merge_trace, &mnone, sizeof(mnone)));
        CK(cudaFree(dmt));
#endif
        unsigned long long z = tr[1], end = 0;
        for (int w = 0; w < warps; ++w) z = std::min(z, tr[w * 4 + 1]), end = std::max(end, tr[w * 4 + 3]);
        const double span = double(end - z);
        std::vector<double> smBusy(prop.multiProcessorCount, 0), smStart(prop.multiProcessorCount, 1e30);
        std::vector<int> smWarps(prop.multiProcessorCount, 0);
        double spreadSum = 0, spreadMax = 0, startMax = 0;
        std::vector<double> ctaLoopEnd;  // per CTA: its last warp's loop end (streaming done)
        std::vector<double> ctaAfterLoop;  // per CTA: its last exit stamp - its last loop end (the merges; the row's
                                           // merging CTA has the split merge in it)
        const int wpc = cfg[0] / 32;
        for (int c = 0; c < ctas; ++c) {
          double lmin = 1e30, lmax = 0, emax = 0;
          for (int w = 0; w < wpc; ++w) {
            const unsigned long long* r = &tr[(size_t(c) * wpc + w) * 4];
            const int sm = int(r[0]);
            smBusy[sm] = std::max(smBusy[sm], double(r[3] - z));
            smStart[sm] = std::min(smStart[sm], double(r[1] - z));
            smWarps[sm]++;
            lmin = std::min(lmin, double(r[2] - z));
            lmax = std::max(lmax, double(r[2] - z));
            emax = std::max(emax, double(r[3] - z));
            startMax = std::max(startMax, double(r[1] - z));
          }
          spreadSum += lmax - lmin;
          spreadMax = std::max(spreadMax, lmax - lmin);
          ctaLoopEnd.push_back(lmax);
          ctaAfterLoop.push_back(emax - lmax);
        }
        std::sort(ctaLoopEnd.begin(), ctaLoopEnd.end());
        std::sort(ctaAfterLoop.begin(), ctaAfterLoop.end());
        std::vector<double> busy;
        for (int s = 0; s < prop.multiProcessorCount; ++s)
          if (smWarps[s]) busy.push_back(smBusy[s]);
        std::sort(busy.begin(), busy.end());
        double avg = 0;
        for (double x : busy) avg += x;
        avg /= busy.size();
        printf("{\"tag\":\"%s\",\"trace\":1,\"batch\":%d,\"L\":%d,\"chunk\":%d,\"span_us\":%.1f,\"sms\":%zu,"
               "\"sm_end_min_us\":%.1f,\"sm_end_p10_us\":%.1f,\"sm_end_avg_us\":%.1f,\"sm_end_p90_us\":%.1f,"
               "\"sm_end_max_us\":%.1f,\"cta_start_max_us\":%.1f,\"warp_loop_spread_avg_us\":%.1f,"
               "\"warp_loop_spread_max_us\":%.1f,\"cta_loop_end_p50_us\":%.1f,\"cta_loop_end_p90_us\":%.1f,"
               "\"cta_loop_end_max_us\":%.1f,\"tail_after_last_loop_us\":%.1f,\"cta_after_loop_p50_us\":%.2f,"
               "\"cta_after_loop_max_us\":%.2f,\"splits\":%d}\n",
               tag.c_str(), B, L, chunk, span / 1e3, busy.size(), busy.front() / 1e3, busy[busy.size() / 10] / 1e3,
               avg / 1e3, busy[busy.size() * 9 / 10] / 1e3, busy.back() / 1e3, startMax / 1e3,
               spreadSum / ctas / 1e3, spreadMax / 1e3, ctaLoopEnd[ctaLoopEnd.size() / 2] / 1e3,
               ctaLoopEnd[ctaLoopEnd.size() * 9 / 10] / 1e3, ctaLoopEnd.back() / 1e3,
               (span - ctaLoopEnd.back()) / 1e3, ctaAfterLoop[ctaAfterLoop.size() / 2] / 1e3,
               ctaAfterLoop.back() / 1e3, splits);
        // per-SM end times in SM order (to see whether slow SMs cluster, e.g. by GPC)
        printf("{\"tag\":\"%s\",\"sm_end_us\":[", tag.c_str());
        for (int s = 0; s < prop.multiProcessorCount; ++s)
          printf("%s%.1f", s ? "," : "", smWarps[s] ? smBusy[s] / 1e3 : -1.0);
        printf("]}\n");
        unsigned long long* none = nullptr;
        CK(cudaMemcpyToSymbol(flashdjl::g_decode_trace, &none, sizeof(none)));
        CK(cudaFree(dtr));
      }
#endif
      const float ms = median_ms(launch);
      const float ms_loop = loop_ms(launch);
      float ms_empty = 0.f, ms_empty_loop = 0.f;  // an empty kernel on the same grid: the launch's own cost
      if (loop > 0) {
        auto empty = [&] { empty_kernel<<<grid, cfg[0]>>>(); };
        ms_empty = median_ms(empty);
        ms_empty_loop = loop_ms(empty);
      }
      err = std::max(err, check());  // again after the timed launches (split counters re-zeroed by each launch)
      const bool ok = err < 2e-3;
      failures += !ok;
      const double bytes = double(B) * L * kHkv * kD * 2 * 2, gbps = ms > 0 ? bytes / (ms * 1e-3) / 1e9 : 0.0;
      char err_json[32];  // JSON has no inf / nan: a non-finite error (NaN in the output) is null
      snprintf(err_json, sizeof err_json, std::isfinite(err) ? "%.2e" : "null", err);
      printf("{\"tag\":\"%s\",\"kernel\":\"%s\",\"batch\":%d,\"L\":%d,\"splits\":%d,\"chunk\":%d,\"ms\":%.4f,"
             "\"gbps\":%.1f,\"copy_gbps\":%.1f,\"pct_copy\":%.1f,\"max_err\":%s,\"ok\":%s",
             tag.c_str(), ks.name, B, L, splits, chunk, ms, gbps, copy, copy > 0 ? 100 * gbps / copy : 0.0, err_json,
             ok ? "true" : "false");
      if (loop > 0)
        printf(",\"loop\":%d,\"ms_loop\":%.4f,\"pct_copy_loop\":%.1f,\"ms_empty\":%.4f,\"ms_empty_loop\":%.4f", loop,
               ms_loop, ms_loop > 0 && copy > 0 ? 100 * bytes / (ms_loop * 1e-3) / 1e9 / copy : 0.0, ms_empty,
               ms_empty_loop);
      printf("}\n");
      fflush(stdout);
    }
    cudaFree(dk);
    cudaFree(dv);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dlse);
    cudaFree(pO);
    cudaFree(pL);
    if (one_table) {
      cudaFree(dtable);
    } else {
      cudaFree(dptr);
      cudaFree(dids);
      cudaFree(dlens);
      cudaFree(dcnt);
    }
  }
  return failures ? 1 : 0;
}
