import re,sys
src=open('/work/exp/orig_paged_decode.cu').read().replace('extern "C" __device__ int paged_decode_','__device__ int paged_decode_')
def sub(s,a,b,count=1):
    assert a in s,(a[:60])
    return s.replace(a,b,count)
def trace(s):
    s=sub(s,"constexpr float kLog2e","__device__ unsigned long long* g_decode_trace = nullptr;\n__device__ __forceinline__ unsigned long long gtimer() { unsigned long long t; asm volatile(\"mov.u64 %0, %globaltimer;\" : \"=l\"(t)); return t; }\n__device__ __forceinline__ unsigned smid() { unsigned s; asm volatile(\"mov.u32 %0, %smid;\" : \"=r\"(s)); return s; }\nconstexpr float kLog2e")
    s=sub(s,"  if (p.head_dim != D) return;\n","  if (p.head_dim != D) return;\n  const unsigned long long tr_t0 = gtimer();\n  unsigned long long* tr = g_decode_trace == nullptr ? nullptr : g_decode_trace + ((size_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * (blockDim.x / 32) * 4 + (threadIdx.x / 32) * 4;\n")
    s=sub(s,"  cp_async_wait<0>();\n  l[0] = quad_sum(l[0]);","  cp_async_wait<0>();\n  const unsigned long long tr_t1 = gtimer();\n  l[0] = quad_sum(l[0]);")
    s=sub(s,"  if (partial) merge_splits_if_last<T, D>(p, b, kvh, G, tid, Tr::kThreads);\n}","  if (partial) merge_splits_if_last<T, D>(p, b, kvh, G, tid, Tr::kThreads);\n  if (tr != nullptr && lane == 0) { tr[0] = smid(); tr[1] = tr_t0; tr[2] = tr_t1; tr[3] = gtimer(); }\n}")
    return s
def kvhfirst(s):
    s=sub(s,"const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;","const int split = blockIdx.x / p.hkv, kvh = blockIdx.x % p.hkv, b = blockIdx.z;")
    return s
# intra-CTA dynamic: warps take the CTA's tiles from a shared counter (one atomicAdd per tile, issued one tile ahead)
def smemdyn(s):
    s=sub(s,"  const int my_tiles = warp < n_tiles ? (n_tiles - warp + NW - 1) / NW : 0;\n",
      "  __shared__ int s_next_tile;\n  if (tid == 0) s_next_tile = NW * (S - 1);  // the first S-1 tiles of every warp are static\n")
    # slot_of takes a tile ordinal (index into the CTA's tile list), not a per-warp index
    s=sub(s,"""  auto slot_of = [&](int my_index) -> int {
    if (my_index >= my_tiles || lane >= 16) return -1;
    const int t = tile_at(warp + my_index * NW) * 16 + lane;""","""  auto slot_of = [&](int ord) -> int {
    if (ord >= n_tiles || lane >= 16) return -1;
    const int t = tile_at(ord) * 16 + lane;""")
    s=sub(s,"""  auto issue = [&](int my_index, int slot) {
    T* sK = sRing + (my_index % S) * Tr::kStageElems;""","""  auto issue = [&](int stage, int slot) {
    T* sK = sRing + (stage % S) * Tr::kStageElems;""")
    s=sub(s,"""#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    const int sl = slot_of(s);
    if (s < my_tiles) issue(s, sl);
    cp_async_commit();
  }
  int next_slot = slot_of(S - 1);

  for (int it = 0; it < my_tiles; ++it) {
    if (it + S - 1 < my_tiles) issue(it + S - 1, next_slot);
    cp_async_commit();
    next_slot = slot_of(it + S);
    cp_async_wait<S - 1>();
    __syncwarp();
    const T* sK = sRing + (it % S) * Tr::kStageElems;
    const T* sV = sK + Tr::kTileElems;
    const int tbase = tile_at(warp + it * NW) * 16;
""","""  // ord[i]: the tile ordinal in ring stage i (>= n_tiles: none); the next ordinal is taken one iteration early
  int ords[S];
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    ords[s] = warp + s * NW;
    const int sl = slot_of(ords[s]);
    if (ords[s] < n_tiles) issue(s, sl);
    cp_async_commit();
  }
  int next_ord = 0;
  if (lane == 0) next_ord = atomicAdd(&s_next_tile, 1);
  next_ord = __shfl_sync(0xffffffffu, next_ord, 0);
  int next_slot = slot_of(next_ord);

  for (int it = 0; ords[0] < n_tiles; ++it) {
    const int cur = ords[0];
    ords[S - 1] = next_ord;
    if (next_ord < n_tiles) issue(it + S - 1, next_slot);
    cp_async_commit();
    if (next_ord < n_tiles) {
      int o2 = 0;
      if (lane == 0) o2 = atomicAdd(&s_next_tile, 1);
      next_ord = __shfl_sync(0xffffffffu, o2, 0);
    }
    next_slot = slot_of(next_ord);
    cp_async_wait<S - 1>();
    __syncwarp();
    const T* sK = sRing + (it % S) * Tr::kStageElems;
    const T* sV = sK + Tr::kTileElems;
    const int tbase = tile_at(cur) * 16;
#pragma unroll
    for (int s = 0; s < S - 1; ++s) ords[s] = ords[s + 1];
""")
    s=sub(s,"  __syncthreads();  // sQ ready\n","  __syncthreads();  // sQ and s_next_tile ready\n")
    return s
open('base.cu','w').write(src)
open('trace.cu','w').write(trace(src))
open('kvh.cu','w').write(kvhfirst(src))
open('kvh_trace.cu','w').write(trace(kvhfirst(src)))
open('dyn.cu','w').write(smemdyn(src))
open('dyn_trace.cu','w').write(trace(smemdyn(src)))
def w8(s):
    s=sub(s,"  static constexpr int kWarps = 4;","  static constexpr int kWarps = 8;")
    s=sub(s,"__launch_bounds__(flashdjl::DecodeTraitsFor<D>::kThreads, 2)","__launch_bounds__(flashdjl::DecodeTraitsFor<D>::kThreads, 1)")
    return s
open('w8.cu','w').write(w8(src))
open('w8dyn.cu','w').write(w8(smemdyn(src)))
open('w8dyn_trace.cu','w').write(trace(w8(smemdyn(src))))
# (run 26's dynamic-unit kernel 'new' and its kUnit 2 / 8 builds were generated here from the working tree of the
# time, which later became the committed kernel; see docs/PERF.md, session 7)
def cluster(s):
    s=kvhfirst(s)
    s=sub(s,'extern "C" __global__ void __launch_bounds__(flashdjl::DecodeTraitsFor<D>::kThreads, 2)','extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(flashdjl::DecodeTraitsFor<D>::kThreads, 2)')
    return s
open('cl.cu','w').write(cluster(src))
open('cl_trace.cu','w').write(trace(cluster(src)))
# bulk-copy (TMA engine, non-tensor) loads: one cp.async.bulk per K / V row (D*2 bytes) into the warp's ring stage,
# completion on a per-(warp, stage) mbarrier; rows past the end are zero-filled by st.shared.
def bulk(s):
    s=sub(s,"constexpr float kLog2e","""__device__ __forceinline__ void mb_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mb_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\\n"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
__device__ __forceinline__ void mb_wait(uint32_t bar, uint32_t parity) {
  asm volatile("{\\n .reg .pred P1;\\nWAIT_%=:\\n mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\\n @!P1 bra WAIT_%=;\\n}\\n"
               ::"r"(bar), "r"(parity) : "memory");
}
constexpr float kLog2e""")
    s=sub(s,"""  auto issue = [&](int my_index, int slot) {
    T* sK = sRing + (my_index % S) * Tr::kStageElems;
    T* sV = sK + Tr::kTileElems;
#pragma unroll
    for (int i = 0; i < kChunksPerLane; ++i) {
      const int c = lane + 32 * i;
      const int r = c / Tr::kCPR, ch = c % Tr::kCPR;
      const int sl = __shfl_sync(0xffffffffu, slot, r);
      const bool ok = sl >= 0;
      const int64_t off = static_cast<int64_t>(ok ? sl : 0) * p.kv_row_stride + ch * 8;
      cp_async_16(smem_addr(sK + r * Tr::kStride + ch * 8), kbase + off, ok);
      cp_async_16(smem_addr(sV + r * Tr::kStride + ch * 8), vbase + off, ok);
    }
  };""","""  __shared__ __align__(8) uint64_t s_bars[NW][S];
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < S; ++s) mb_init(smem_addr(&s_bars[warp][s]), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\\n" ::: "memory");
  }
  __syncwarp();
  auto issue = [&](int my_index, int slot) {
    T* sK = sRing + (my_index % S) * Tr::kStageElems;
    T* sV = sK + Tr::kTileElems;
    const uint32_t bar = smem_addr(&s_bars[warp][my_index % S]);
    const unsigned valid = __ballot_sync(0xffffffffu, lane < 16 && slot >= 0);
    if (lane == 0) mb_expect(bar, __popc(valid) * 2u * D * sizeof(T));
    __syncwarp();
    if (lane < 16) {
      if (slot >= 0) {
        const int64_t off = static_cast<int64_t>(slot) * p.kv_row_stride;
        bulk_copy(smem_addr(sK + lane * Tr::kStride), kbase + off, D * sizeof(T), bar);
        bulk_copy(smem_addr(sV + lane * Tr::kStride), vbase + off, D * sizeof(T), bar);
      } else {
#pragma unroll
        for (int ch = 0; ch < Tr::kCPR; ++ch) {
          *reinterpret_cast<uint4*>(sK + lane * Tr::kStride + ch * 8) = make_uint4(0, 0, 0, 0);
          *reinterpret_cast<uint4*>(sV + lane * Tr::kStride + ch * 8) = make_uint4(0, 0, 0, 0);
        }
      }
    }
  };""")
    s=sub(s,"""    if (it + S - 1 < my_tiles) issue(it + S - 1, next_slot);
    cp_async_commit();
    next_slot = slot_of(it + S);
    cp_async_wait<S - 1>();
    __syncwarp();""","""    if (it + S - 1 < my_tiles) issue(it + S - 1, next_slot);
    next_slot = slot_of(it + S);
    mb_wait(smem_addr(&s_bars[warp][it % S]), (it / S) & 1);
    __syncwarp();""")
    s=sub(s,"""    const int sl = slot_of(s);
    if (s < my_tiles) issue(s, sl);
    cp_async_commit();""","""    const int sl = slot_of(s);
    if (s < my_tiles) issue(s, sl);""")
    return s
open('bulk.cu','w').write(bulk(src))
open('bulk_trace.cu','w').write(trace(bulk(src)))
fin=open('/work/exp/final.cu').read()
open('final_trace.cu','w').write(trace(fin))
open('final_b32.cu','w').write(sub(fin,"  constexpr int kBatch = 8;  ","  constexpr int kBatch = kLanes;  "))
open('final_b32_trace.cu','w').write(trace(sub(fin,"  constexpr int kBatch = 8;  ","  constexpr int kBatch = kLanes;  ")))
def pdl(s):
    s=sub(s,"  if (p.head_dim != D) return;\n","  asm volatile(\"griddepcontrol.wait;\\n\" ::: \"memory\");  // the previous grid's writes are visible\n  if (p.head_dim != D) return;\n")
    s=sub(s,"  cp_async_wait<0>();\n  l[0] = quad_sum(l[0]);","  cp_async_wait<0>();\n  asm volatile(\"griddepcontrol.launch_dependents;\\n\" ::: \"memory\");\n  l[0] = quad_sum(l[0]);")
    return s
cur=open('/work/main/ops/src/main/cuda/paged_decode.cu').read().replace('extern "C" __device__ int paged_decode_','__device__ int paged_decode_')
open('cur.cu','w').write(cur)
open('cur_pdl.cu','w').write(pdl(cur))
# split merge hand-off as CUTLASS's semaphore does it: one thread releases (fence.acq_rel.gpu + atomic) after the
# CTA barrier, the last CTA's thread 0 acquires; no per-thread __threadfence
def relacq(s):
    s=sub(s,"""  __threadfence();  // this CTA's partials are visible device-wide before it is counted
  __syncthreads();
  if (tid == 0) {
    int* counter = p.split_counters + b * p.hkv + kvh;
    s_last = atomicAdd(counter, 1) == p.num_splits - 1;
    if (s_last) *counter = 0;  // every CTA of the row has been counted
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
""","""  __syncthreads();  // every thread's partial writes happen before thread 0's release
  if (tid == 0) {
    int* counter = p.split_counters + b * p.hkv + kvh;
    int prev;
    asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;\\n" : "=r"(prev) : "l"(counter) : "memory");
    s_last = prev == p.num_splits - 1;
    if (s_last) *counter = 0;  // every CTA of the row has been counted
  }
  __syncthreads();  // thread 0's acquire orders the other CTAs' partials before every thread's reads
  if (!s_last) return;
""")
    return s
open('cur_ra.cu','w').write(relacq(cur))
open('cur_ra_trace.cu','w').write(trace(relacq(cur)))
open('cur_trace.cu','w').write(trace(cur))
