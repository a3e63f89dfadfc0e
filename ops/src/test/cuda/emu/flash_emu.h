// CPU emulation of the PTX helpers used by flash_fwd.cu and paged_decode.cu (test only; see flash_emu_test.cpp,
// decode_emu_test.cpp). Included inside namespace flashdjl when FLASHDJL_HOST_EMULATION names it.
// Every CUDA thread is an OS thread; warp collectives (shfl, ldmatrix, mma) exchange operands
// through per-warp slots between two warp barriers, following the PTX ISA fragment layouts.
// cp.async copies are deferred until the issuing thread's cp.async.wait_group, like hardware: a group completes
// when a wait leaves fewer committed groups pending than it allows. CTAs run one after another, so a static
// __shared__ variable (the test defines __shared__ as static) is the running CTA's.
#pragma once

#define FLASHDJL_DYNAMIC_SMEM(name) unsigned char* name = ::flashdjl::emu_block->smem.data()

struct EmuDim { unsigned x = 0, y = 0, z = 0; };

struct EmuBarrier {
  std::mutex m;
  std::condition_variable cv;
  int n = 0, count = 0;
  long gen = 0;
  void wait() {
    std::unique_lock<std::mutex> l(m);
    const long g = gen;
    if (++count == n) {
      count = 0;
      ++gen;
      cv.notify_all();
    } else {
      cv.wait(l, [&] { return gen != g; });
    }
  }
};

struct EmuBlock {
  std::vector<unsigned char> smem;
  EmuBarrier block_bar;
  EmuBarrier warp_bar[32];
  uint32_t slots[32][32][8];  // [warp][lane][operand]
};

struct EmuCopy { uint32_t dst; const void* src; bool valid; };

extern thread_local EmuDim threadIdx, blockIdx;
extern EmuDim gridDim;
extern thread_local EmuBlock* emu_block;
extern thread_local std::vector<EmuCopy> emu_pending;                 // copies of the open (uncommitted) group
extern thread_local std::vector<std::vector<EmuCopy>> emu_groups;     // committed, oldest first

using std::max;
using std::min;

inline void __syncthreads() { emu_block->block_bar.wait(); }
inline void __syncwarp() { emu_block->warp_bar[threadIdx.x / 32].wait(); }
inline uint32_t (&emu_slot())[8] { return emu_block->slots[threadIdx.x / 32][threadIdx.x % 32]; }
inline uint32_t emu_peek(int lane, int i) { return emu_block->slots[threadIdx.x / 32][lane][i]; }

inline float __shfl_xor_sync(unsigned, float x, int m, int width = 32) {  // m < width: lane ^ m stays in the segment
  (void)width;
  uint32_t u;
  memcpy(&u, &x, 4);
  emu_slot()[0] = u;
  __syncwarp();
  u = emu_peek((threadIdx.x % 32) ^ m, 0);
  __syncwarp();
  memcpy(&x, &u, 4);
  return x;
}
// __shfl_sync of a 4-byte value from lane src of the caller's width-lane segment
template <typename V>
inline V __shfl_sync(unsigned, V x, int src, int width = 32) {
  static_assert(sizeof(V) == 4, "4-byte shuffles only");
  uint32_t u;
  memcpy(&u, &x, 4);
  emu_slot()[0] = u;
  __syncwarp();
  const int lane = threadIdx.x % 32;
  u = emu_peek((lane / width) * width + (src % width), 0);
  __syncwarp();
  memcpy(&x, &u, 4);
  return x;
}
inline float __fdividef(float a, float b) { return a / b; }
inline float fast_exp2(float x) { return exp2f(x); }
inline float fast_log2(float x) { return log2f(x); }

inline uint32_t smem_addr(const void* p) {
  const long d = static_cast<const unsigned char*>(p) - emu_block->smem.data();
  if (d < 0 || d >= (long)emu_block->smem.size()) { fprintf(stderr, "smem_addr out of range\n"); abort(); }
  return (uint32_t)d;
}
inline uint16_t emu_smem16(uint32_t addr) {
  if (addr % 2 || addr + 2 > emu_block->smem.size()) { fprintf(stderr, "bad smem read %u\n", addr); abort(); }
  uint16_t v;
  memcpy(&v, &emu_block->smem[addr], 2);
  return v;
}

inline void cp_async_16(uint32_t dst, const void* src, bool valid) {
  if (dst % 16 || dst + 16 > emu_block->smem.size()) { fprintf(stderr, "bad cp.async dst %u\n", dst); abort(); }
  if (valid && (reinterpret_cast<uintptr_t>(src) % 16)) { fprintf(stderr, "misaligned cp.async src\n"); abort(); }
  emu_pending.push_back({dst, src, valid});
}
// the cache hints of the stream copy change nothing a CPU can see
inline uint64_t l2_evict_first_policy() { return 0; }
inline void cp_async_16_stream(uint32_t dst, const void* src, bool valid, uint64_t) { cp_async_16(dst, src, valid); }
inline void cp_async_commit() {
  emu_groups.push_back(emu_pending);
  emu_pending.clear();
}
// Read-only cached load (the paged tile loader reads page ids with it).
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline void emu_complete(const std::vector<EmuCopy>& group) {
  for (const EmuCopy& c : group) {
    if (c.valid) memcpy(&emu_block->smem[c.dst], c.src, 16);
    else memset(&emu_block->smem[c.dst], 0, 16);
  }
}
// cp.async.wait_all = commit + wait_group 0
inline void cp_async_wait_all() {
  cp_async_commit();
  for (const auto& g : emu_groups) emu_complete(g);
  emu_groups.clear();
}
// cp.async.wait_group N: the committed groups but the newest N have landed
template <int N>
inline void cp_async_wait() {
  while ((int)emu_groups.size() > N) {
    emu_complete(emu_groups.front());
    emu_groups.erase(emu_groups.begin());
  }
}
// L2 loads, fences and atomics: one CTA runs at a time, so plain accesses (the atomic under a lock against the
// CTA's own threads) have the hardware's semantics here.
template <typename T>
inline T __ldcg(const T* p) {
  return *p;
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* a, int v) {
  static std::mutex m;
  std::lock_guard<std::mutex> l(m);
  const int old = *a;
  *a = old + v;
  return old;
}
// ptx.cuh's semaphore arrival (atom.acq_rel.gpu): the same add, between full fences
inline int atomic_add_acq_rel_gpu(int* a, int v) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const int old = atomicAdd(a, v);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return old;
}
inline float __log2f(float x) { return log2f(x); }

// ldmatrix .x4: lane l supplies the address of row l%8 of matrix l/8; lane l receives
// (row l/4, cols 2(l%4), 2(l%4)+1) of each matrix; .trans: (rows 2(l%4), 2(l%4)+1; col l/4).
inline void emu_ldsm(uint32_t (&r)[4], uint32_t addr, bool trans) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  emu_slot()[0] = addr;
  __syncwarp();
  for (int m = 0; m < 4; ++m) {
    uint16_t lo, hi;
    if (!trans) {
      const uint32_t row = emu_peek(8 * m + g, 0);
      lo = emu_smem16(row + 2 * (2 * t));
      hi = emu_smem16(row + 2 * (2 * t + 1));
    } else {
      lo = emu_smem16(emu_peek(8 * m + 2 * t, 0) + 2 * g);
      hi = emu_smem16(emu_peek(8 * m + 2 * t + 1, 0) + 2 * g);
    }
    r[m] = lo | ((uint32_t)hi << 16);
  }
  __syncwarp();
}
inline void ldsm_x4(uint32_t (&r)[4], uint32_t addr) { emu_ldsm(r, addr, false); }
inline void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) { emu_ldsm(r, addr, true); }

template <typename T>
inline float emu_to_float(uint16_t b) {
  T h;
  memcpy(&h, &b, 2);
  return static_cast<float>(h);
}
template <typename T>
inline void emu_mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  uint32_t* s = emu_slot();
  for (int i = 0; i < 4; ++i) s[i] = a[i];
  s[4] = b0;
  s[5] = b1;
  __syncwarp();
  auto A = [&](int row, int k) {  // a0 (g,2t) a1 (g+8,2t) a2 (g,2t+8) a3 (g+8,2t+8)
    const int reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    const uint32_t w = emu_peek((row % 8) * 4 + (k % 8) / 2, reg);
    return emu_to_float<T>((uint16_t)(k % 2 ? w >> 16 : w & 0xffff));
  };
  auto B = [&](int k, int n) {  // b0 (k 2t..2t+1, n g), b1 (k 2t+8..)
    const uint32_t w = emu_peek(n * 4 + (k % 8) / 2, 4 + (k >= 8 ? 1 : 0));
    return emu_to_float<T>((uint16_t)(k % 2 ? w >> 16 : w & 0xffff));
  };
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i % 2);
    float acc = c[i];
    for (int k = 0; k < 16; ++k) acc += A(row, k) * B(k, col);
    c[i] = acc;
  }
  __syncwarp();
}

template <typename T> struct Mma;
template <> struct Mma<__half> {
  static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu_mma<__half>(c, a, b0, b1);
  }
  static uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
  }
  static __half from(float x) { return __float2half_rn(x); }
};
template <> struct Mma<__nv_bfloat16> {
  static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu_mma<__nv_bfloat16>(c, a, b0, b1);
  }
  static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
  }
  static __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
};

inline int64_t opaque(int64_t x) { return x; }
inline int opaque(int x) { return x; }
