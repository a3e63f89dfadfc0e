#!/usr/bin/env bash
# Run 118 (session 22): causal + ALiBi on the causal pipeline (flash_fwd_sm90_*_hd{64,128}_causal_alibi and its
# persistent form: the causal kernel's walk with ALiBi's key term on the tensor cores on every tile, the key-term
# tile made head-independent: B rows 0-2 = c, A = side slope / scale in three half / bfloat16 terms). flash_check
# --check over the new sm90 fatbin (also with 4 CTAs for the persistent forms), sanitizers on small cases, then
# --bench-general hd 128 with base (main 98e8f05's sm90 fatbin) and new interleaved, two passes each.
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf $T/fa42.txz -C /tmp/fa
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/flash_fwd_sm90.fatbin /tmp/fa/new/flash_fwd_sm90.fatbin
timeout 240 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/new > $OUT/check.txt 2>&1; echo "check rc=$?"; tail -3 $OUT/check.txt
grep -i "fail" $OUT/check.txt | head -20
timeout 240 /tmp/fa/flash_check --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/fa/new > $OUT/check-ctas4.txt 2>&1; echo "check ctas4 rc=$?"; tail -1 $OUT/check-ctas4.txt
grep -i "fail" $OUT/check-ctas4.txt | head -10
echo "checks done at ${SECONDS}s"
. tests/gpu/perf_run_lib.sh
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/new /tmp/new
BENCH_ARGS="--hd 128" bench_general burst $OUT/general.jsonl base new
BENCH_ARGS="--hd 128" bench_general burst $OUT/general.jsonl new base
bench_general sustained $OUT/general.jsonl base new
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base new
echo "bench done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 150 $CS --tool $tool --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 3000000 --ctas 4 --fatbin-dir /tmp/fa/new > /tmp/san.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(tail -1 /tmp/san.txt)"
done | tee $OUT/sanitizer.txt
