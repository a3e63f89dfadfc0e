#!/usr/bin/env bash
# For the next session (issue 12, causal ALiBi within 10 % of causal): what the general kernel's causal mode loses
# against the causal kernel (run 82: general-causal without a modifier 0.93 of causal at hd 128, L 4096). The causal
# and plain kernels run their persistent forms on calls of up to cfg[4] query blocks per head (L 4096 / Br 128 = 32
# blocks at hd 128); the general kernel has no persistent form. This times bench-general --hd 128 with the persistent
# forms allowed (default) and forbidden (--persistent-blocks 0), burst, twice interleaved: if causal falls to ~0.93 of
# itself without them, a persistent general kernel is the lever; if not, look at the general kernel's spills.
# Prepared in session 17, not run (its device time was spent).
# .devcarry: fc.xz (tests/gpu/devcarry.sh --no-bundle) and fb.txz = this tree's flash_fwd_sm90.fatbin
#   (mvn -pl ops generate-resources, then tar cJf .devcarry/fb.txz -C ops/target/classes/org/flashdjl/ops/cuda
#   flash_fwd_sm90.fatbin): no bundle needed, flash_check --kernels sm90 reads only that fatbin.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/tree && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/fb.txz -C /tmp/tree
md5sum /tmp/tree/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
for pass in 1 2; do
  BENCH_ARGS="--hd 128" bench_general burst $OUT/persistent.jsonl tree
  BENCH_ARGS="--hd 128 --persistent-blocks 0" bench_general burst $OUT/per-tile.jsonl tree
done
echo "persistent forms allowed:"; python3 tests/gpu/perf_summary.py general $OUT/persistent.jsonl tree
echo "persistent forms off:"; python3 tests/gpu/perf_summary.py general $OUT/per-tile.jsonl tree
