#!/usr/bin/env bash
# Run 121 (session 22): the ALiBi-alone walk's tiles without a tensor-core side (every tile at hd 256, the tiles across
# the diagonal at hd 64 / 128) take the bias in raw q.k units (s + (-slope / scale) |pos - key|, one FADD and one FMA a
# score) and the scale on finish's FMAs (kind 1), instead of scaling every score to log2 units first (one FMUL a score
# more). flash_check --check over cand (also 4 CTAs), --bench-general hd 256 and 128 base (main 5b4ffc0) / cand
# interleaved (burst twice, sustained once), memcheck, then the Java GPU suite over run 119's bundle with cand's
# flash_fwd_sm90.fatbin swapped in.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/fa45.txz -C /tmp/fa && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/* /tmp/fa/cand/*
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/cand > $OUT/check.txt 2>&1; echo "check rc=$? $(tail -1 $OUT/check.txt)"
grep "^FAIL" $OUT/check.txt | head -10
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/fa/cand > $OUT/check-ctas4.txt 2>&1; echo "check ctas4 rc=$? $(tail -1 $OUT/check-ctas4.txt)"
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/cand /tmp/cand
bench_general burst $OUT/general.jsonl base cand
bench_general burst $OUT/general.jsonl cand base
bench_general sustained $OUT/general.jsonl base cand
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
echo "bench done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 100 $CS --tool memcheck --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fa/cand > /tmp/san.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee $OUT/sanitizer.txt
swap_ops_fatbins /tmp/b/lib /tmp/fa/cand flash_fwd_sm90.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
