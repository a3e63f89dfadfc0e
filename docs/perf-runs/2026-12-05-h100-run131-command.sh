#!/usr/bin/env bash
# Run 131 (session 29; prepared in session 28 as the landed fatbin's H200 standing, extended in session 29).
# "land" = the landed fatbins (flash_fwd_sm90 cbc87cf2: causal_softcap kernels + the mended tier reference;
# flash_fwd 67d8d484, paged_prefill_sm90 9ba0e04d); "rs" = land with session 29's flash_fwd_sm90 (8d031cd8: one helper,
# ref_shift<T>(bound), for the cap / tier references' shift; semantically the same, but ptxas allocated registers
# differently in 20 softcap-capable kernels). flash_check --check over rs (and with 4 CTAs a launch), then
# --bench-general burst, fp16 every hd land / rs in both orders, bf16 hd 128 once each (ratios to our plain / causal
# kernels of the same pass). On an H200 the land columns are the landed kernels' standing; on an H100 they repeat run
# 130's tier column (same SASS) and only the rs comparison is new.
# carry [".devcarry/fa56.txz"]: flash_check (ops/src/test/cuda/flash_check.cu, nvcc 13.0 `nvcc -std=c++17 -O3
# -cudart static -o fc flash_check.cu -lpthread`), land/ and rs/ (the fatbins above; a pom build of main gives land's,
# `mvn -pl ops -am package -DskipTests` -> ops/target/classes/org/flashdjl/ops/cuda/).
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/fa && tar xJf .devcarry/fa56.txz -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc &&
  cp -r /tmp/fa/land /tmp/land && cp -r /tmp/fa/rs /tmp/rs
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/land/* /tmp/rs/* /tmp/fc
timeout 100 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/rs > "$OUT/check-rs.txt" 2>&1
echo "check rs rc=$? $(tail -1 "$OUT/check-rs.txt") at ${SECONDS}s"
grep "^FAIL" "$OUT/check-rs.txt" | head -10
timeout 100 /tmp/fc --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/rs > "$OUT/check-rs-ctas4.txt" 2>&1
echo "check rs --ctas 4 rc=$? $(tail -1 "$OUT/check-rs-ctas4.txt") at ${SECONDS}s"
grep "^FAIL" "$OUT/check-rs-ctas4.txt" | head -10
xz -9 "$OUT/check-rs.txt" "$OUT/check-rs-ctas4.txt"
bench_general burst "$OUT/general.jsonl" land rs
bench_general burst "$OUT/general.jsonl" rs land
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" land rs
echo "fp16 bench done at ${SECONDS}s"
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" land rs
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" land rs
echo "all done at ${SECONDS}s"
