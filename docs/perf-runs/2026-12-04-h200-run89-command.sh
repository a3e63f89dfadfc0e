#!/usr/bin/env bash
# Run 89 (session 18): the softcap walk's fold (CapPoly's a, a_l2 and the degree-5 coefficients) set once per CTA in
# shared memory (s_cap, s_tiny) and read per tile, instead of folded from the params on every tile (~20 instructions,
# an IEEE division among them). helper = the tree before (915ed2f: flash_fwd_sm90 a0e8c0b4), fold = this tree
# (flash_fwd_sm90 f3b87916, paged_prefill_sm90 b69ad253). flash_check --check over fold; bench-general --hd 128 burst,
# helper / fold twice interleaved; the Java GPU suite over run 86's bundle (same Java code) with fold's two fatbins.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
export BENCH_ARGS="--hd 128"
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
tar xJf $T/c88.txz -C /tmp && tar xJf $T/c89.txz -C /tmp
md5sum /tmp/{helper,fold}/*.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fold > /tmp/check.txt 2>&1
echo "check fold rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench_general burst $OUT/general.jsonl helper fold
bench_general burst $OUT/general.jsonl fold helper; echo "burst at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl helper fold
swap_ops_fatbins /tmp/b/lib /tmp/fold flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; tr '\n' ' ' < $OUT/suite-summary.txt; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
