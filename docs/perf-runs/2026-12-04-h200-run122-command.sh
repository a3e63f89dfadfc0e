#!/usr/bin/env bash
# Run 122 (session 23): softcap's fourth polynomial tier (CapPoly::Micro, the odd degree-3 fit on |u| <= 0.11: three
# FMA-pipe ops a score with the max's subtraction, Tiny's four) = cand; cand2 = cand + run 121's ALiBi-across-the-
# diagonal bias in raw q.k units at hd 256 only. flash_check --check over both (cand also with 4 CTAs),
# --bench-general base (main a109d79) / cand / cand2 interleaved (burst twice in both orders, sustained once),
# memcheck over cand, then the Java GPU suite over run 119's bundle with cand's flash_fwd_sm90.fatbin and
# paged_prefill_sm90.fatbin swapped in.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && { [ "${1:-bench}" = bench ] || tar xJf $T/bundle.txz -C /tmp/b; } && tar xJf $T/fa46.txz -C /tmp/fa && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand/ && cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand2/
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/* /tmp/fa/cand/* /tmp/fa/cand2/*
# two device calls: "$0 bench" (checks, benchmark, memcheck), then "$0 suite" (the Java GPU suite)
if [ "${1:-bench}" = bench ]; then
for v in cand cand2; do
  timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/$v > $OUT/check-$v.txt 2>&1; echo "check $v rc=$? $(tail -1 $OUT/check-$v.txt)"
  grep "^FAIL" $OUT/check-$v.txt | head -10
done
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/fa/cand > $OUT/check-ctas4.txt 2>&1; echo "check ctas4 rc=$? $(tail -1 $OUT/check-ctas4.txt)"
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/cand /tmp/cand && cp -r /tmp/fa/cand2 /tmp/cand2
bench_general burst $OUT/general.jsonl base cand cand2
bench_general burst $OUT/general.jsonl cand2 cand base
bench_general sustained $OUT/general.jsonl base cand cand2
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand cand2
echo "bench done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 100 $CS --tool memcheck --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fa/cand > /tmp/san.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee $OUT/sanitizer.txt
else
swap_ops_fatbins /tmp/b/lib /tmp/fa/cand flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
fi
