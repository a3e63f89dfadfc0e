#!/usr/bin/env bash
# Run 119 (session 22): causal_alibi verified end to end, and the dedicated ALiBi kernels at hd 256. (1) The Java GPU
# suite over this tree's bundle (FlashDispatch routes causal + ALiBi to causal_alibi at hd 64 / 128; new GPU cases:
# the causal+alibi option in the sweep, a varlen case, two persistent-walk cases). (2) flash_check --check over the
# candidate sm90 fatbin (the bundle's kernels plus causal_alibi and alibi at hd 256, 64-key tiles), also with 4 CTAs;
# memcheck / racecheck on small cases. (3) --bench-general hd 256 (and hd 128 once) base (main 98e8f05) / cand.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/fa43.txz -C /tmp/fa && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
gpu_suite /tmp/b /tmp/libdjl_torch.so
grep -E "causalAlibi|causal\+alibi" /tmp/suite.log | head -5
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/cand > $OUT/check.txt 2>&1; echo "check rc=$? $(tail -1 $OUT/check.txt)"
grep "^FAIL" $OUT/check.txt | head -10; grep -c "_alibi " $OUT/check.txt
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/fa/cand > $OUT/check-ctas4.txt 2>&1; echo "check ctas4 rc=$? $(tail -1 $OUT/check-ctas4.txt)"
grep "^FAIL" $OUT/check-ctas4.txt | head -5
echo "checks done at ${SECONDS}s"
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/cand /tmp/cand
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl base cand
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl cand base
BENCH_ARGS="--hd 128" bench_general burst $OUT/general.jsonl cand
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
echo "bench done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 100 $CS --tool $tool --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fa/cand > /tmp/san.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(tail -1 /tmp/san.txt)"
done | tee $OUT/sanitizer.txt
