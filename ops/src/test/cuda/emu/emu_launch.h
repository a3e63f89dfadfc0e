// The host side of the CPU emulation tests (flash_emu_test.cpp, decode_emu_test.cpp): the emulated thread state,
// one grid launch (CTAs one after another, each CTA's threads as OS threads) and the fp16 / bf16 bit conversions.
// Included once per test program, after the kernel source (which brings flash_emu.h).
#pragma once

namespace flashdjl {
thread_local EmuDim threadIdx, blockIdx;
EmuDim gridDim;
thread_local EmuBlock* emu_block = nullptr;
thread_local std::vector<EmuCopy> emu_pending;
thread_local std::vector<std::vector<EmuCopy>> emu_groups;
}  // namespace flashdjl

// Runs kernel(p) over the grid with `threads` threads per CTA and `smem` bytes of (garbage-filled) dynamic shared
// memory; every thread must have waited for all of its cp.async copies.
template <typename Params>
static void emu_launch(void (*kernel)(const Params), flashdjl::EmuDim grid, int threads, int smem, const Params& p) {
  flashdjl::gridDim = grid;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        auto* blk = new flashdjl::EmuBlock();
        blk->smem.assign(smem, 0xAB);  // garbage, like real smem
        blk->block_bar.n = threads;
        for (auto& b : blk->warp_bar) b.n = 32;
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
          ts.emplace_back([&, t] {
            flashdjl::threadIdx = {(unsigned)t, 0, 0};
            flashdjl::blockIdx = {x, y, z};
            flashdjl::emu_block = blk;
            kernel(p);
            if (!flashdjl::emu_pending.empty() || !flashdjl::emu_groups.empty()) {
              fprintf(stderr, "cp.async never waited\n");
              abort();
            }
          });
        for (auto& t : ts) t.join();
        delete blk;
      }
}

static float b2f(uint16_t b, bool bf16) {
  if (bf16) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }
  __half h; memcpy(&h, &b, 2); return __half2float(h);
}
static uint16_t f2b(float f, bool bf16) {
  if (bf16) { __nv_bfloat16 h = __float2bfloat16_rn(f); uint16_t b; memcpy(&b, &h, 2); return b; }
  __half h = __float2half_rn(f); uint16_t b; memcpy(&b, &h, 2); return b;
}
