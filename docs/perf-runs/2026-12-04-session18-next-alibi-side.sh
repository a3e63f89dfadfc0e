#!/usr/bin/env bash
# For the next session (issue 12: hd 256 general ALiBi 0.89-0.90 of plain, bar 0.90): ALiBi side tiles in the kernels
# without the tensor-core key term (hd 256 general / positioned, paged prefill). Patch
# docs/perf-runs/2026-12-04-session18-alibi-side-fma.patch: on a key tile wholly left or right of the warpgroup's rows
# the bias is r - 8 side nslope_l2 j (r per row and column pair): two FMAs a score instead of ScoreMod::at's three.
# It is run 90's candidate with its bug fixed: run 90 let those kernels into the tensor-core path's branch (kind 1,
# which expects the key term inside S) because that branch was not guarded by kTcAlibi; 12 flash_check cases and 3 Java
# GPU tests failed, as they should. The fix guards it; compiled (ptxas hd 256 general 0 B of spills; the hd 128
# general kernel's .text byte-identical to the tree's), not run: session 18's device time was spent.
# Before the call: git apply the patch; tests/gpu/devcarry.sh --no-fc -o (bundle of the patched tree); .devcarry/
# base.txz = the tree's flash_fwd_sm90.fatbin and paged_prefill_sm90.fatbin (tar cJf from ops/target/classes/org/
# flashdjl/ops/cuda of an unpatched build: a0e8c0b4 / 5a7f030b at 915ed2f-b39bfe3). Move docs/perf-runs out of the
# working tree for the call (carry limit). Then this script.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,cand}/*sm90.fatbin
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand > /tmp/check.txt 2>&1
echo "check cand rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl base cand
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl cand base; echo "burst at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
gpu_suite /tmp/b /tmp/libdjl_torch.so
