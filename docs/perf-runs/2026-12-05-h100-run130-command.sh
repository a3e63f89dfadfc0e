#!/usr/bin/env bash
# Run 130 (session 28): session 27's tier reference, mended (a row's first running-max tile takes its own max as m, down
# as well as up, floored at -L cap_l2 where the row holds a sum: run 128's 10 failures were rows whose every logit lay
# far below the reference), rebased onto the causal-softcap main (bcdacc42). "base" = the bundle's fatbins (main,
# bcdacc42), "tier" = base with the mended tier build's flash_fwd_sm90.fatbin. flash_check --check over tier (and with
# 4 CTAs a launch), --bench-general burst fp16 base / tier interleaved in both orders, the Java GPU suite over the bundle
# with tier swapped in, compute-sanitizer memcheck over tier's small cases.
# carry [".devcarry/bundle53.txz", ".devcarry/libdjl_torch.so.xz", ".devcarry/fa54.txz"] (fa54 = flash_check from the
# mended tree + tier/flash_fwd_sm90.fatbin); docs/ and model-zoo-examples/src/test/resources moved out for the call.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf "$T/bundle53.txz" -C /tmp/b && xz -dc "$T/libdjl_torch.so.xz" > /tmp/libdjl_torch.so &&
  tar xJf "$T/fa54.txz" -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/base > /dev/null && cp -r /tmp/base /tmp/tier &&
  cp /tmp/fa/tier/flash_fwd_sm90.fatbin /tmp/tier/ && md5sum /tmp/base/flash_fwd_sm90.fatbin /tmp/tier/* /tmp/fc
timeout 100 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/tier > "$OUT/check-tier.txt" 2>&1
echo "check tier rc=$? $(tail -1 "$OUT/check-tier.txt") at ${SECONDS}s"
grep "^FAIL" "$OUT/check-tier.txt" | head -10
timeout 100 /tmp/fc --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/tier > "$OUT/check-tier-ctas4.txt" 2>&1
echo "check tier --ctas 4 rc=$? $(tail -1 "$OUT/check-tier-ctas4.txt") at ${SECONDS}s"
grep "^FAIL" "$OUT/check-tier-ctas4.txt" | head -10
bench_general burst "$OUT/general.jsonl" base tier
bench_general burst "$OUT/general.jsonl" tier base
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" base tier
echo "bench done at ${SECONDS}s"
if ! grep -q "^FAIL" "$OUT/check-tier.txt"; then
  swap_ops_fatbins /tmp/b/lib /tmp/fa/tier flash_fwd_sm90.fatbin
  gpu_suite /tmp/b /tmp/libdjl_torch.so
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  timeout $((580 - SECONDS)) $CS --tool memcheck --print-limit 10 /tmp/fc --check --kernels sm90 --max-work 2000000 \
    --ctas 4 --fatbin-dir /tmp/tier > /tmp/san.txt 2>&1
  echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee "$OUT/sanitizer.txt"
fi
echo "all done at ${SECONDS}s"
