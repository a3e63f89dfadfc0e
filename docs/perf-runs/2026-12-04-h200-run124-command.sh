#!/usr/bin/env bash
# Run 124 (session 23): cand5 = the softcap walk's tier tests on the warp's largest |u| taken once (redux.sync) instead
# of one vote per tier, run 122's degree-3 tier first in the flat order, and the ALiBi-across-the-diagonal bias in raw
# q.k units at hd 256; cand2 = run 122's cand2 (votes, flat order, the same hd 256 ALiBi). flash_check --check over
# cand5, --bench-general base (main a109d79) / cand2 / cand5 interleaved (burst, both orders), the Java GPU suite over
# run 119's bundle with cand5's flash_fwd_sm90.fatbin and paged_prefill_sm90.fatbin swapped in, then memcheck over
# cand5 (trimmed to fit: the first try of this call was lost when the machine was taken back).
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/fa48.txz -C /tmp/fa && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand2/ && cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand5/
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/* /tmp/fa/cand2/* /tmp/fa/cand5/*
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/cand5 > $OUT/check.txt 2>&1; echo "check rc=$? $(tail -1 $OUT/check.txt)"
grep "^FAIL" $OUT/check.txt | head -10
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/cand2 /tmp/cand2 && cp -r /tmp/fa/cand5 /tmp/cand5
bench_general burst $OUT/general.jsonl base cand2 cand5
bench_general burst $OUT/general.jsonl cand5 cand2 base
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand2 cand5
echo "bench done at ${SECONDS}s"
swap_ops_fatbins /tmp/b/lib /tmp/fa/cand5 flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 70 $CS --tool memcheck --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fa/cand5 > /tmp/san.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee $OUT/sanitizer.txt
