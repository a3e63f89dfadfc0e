#!/usr/bin/env bash
# Run 123 (session 23): run 122's degree-3 softcap tier with its test nested inside the degree-5 tier's (a tile past
# the degree-5 range pays no extra vote) = cand3; cand4 = cand3 + the ALiBi-across-the-diagonal bias in raw q.k units
# at hd 256 only. flash_check --check over both, --bench-general base (main a109d79) / cand3 / cand4 interleaved (burst,
# both orders), then the Java GPU suite over run 119's bundle with cand4's flash_fwd_sm90.fatbin and
# paged_prefill_sm90.fatbin swapped in.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/fa47.txz -C /tmp/fa && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand3/ && cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/cand4/
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/* /tmp/fa/cand3/* /tmp/fa/cand4/*
for v in cand3 cand4; do
  timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/$v > $OUT/check-$v.txt 2>&1; echo "check $v rc=$? $(tail -1 $OUT/check-$v.txt)"
  grep "^FAIL" $OUT/check-$v.txt | head -10
done
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/cand3 /tmp/cand3 && cp -r /tmp/fa/cand4 /tmp/cand4
bench_general burst $OUT/general.jsonl base cand3 cand4
bench_general burst $OUT/general.jsonl cand4 cand3 base
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand3 cand4
echo "bench done at ${SECONDS}s"
swap_ops_fatbins /tmp/b/lib /tmp/fa/cand4 flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
