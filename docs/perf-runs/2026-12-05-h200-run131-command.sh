#!/usr/bin/env bash
# Prepared in session 28, not run (its GPU calls came on H100s; an H100 would repeat run 130's tier column).
# Run 131: the landed flash_fwd_sm90.fatbin (cbc87cf2: causal_softcap kernels + the mended tier reference)
# on an H200, for the standing table: --bench-general burst, fp16 every hd twice, bf16 hd 128 once (ratios to our plain
# / causal kernels of the same pass). carry [".devcarry/fa55.txz"]: flash_check (ops/src/test/cuda/flash_check.cu) and
# land/ = flash_fwd_sm90.fatbin (cbc87cf2), flash_fwd.fatbin (67d8d484), paged_prefill_sm90.fatbin (9ba0e04d), all from
# an nvcc 13.0 build of main with the pom's flags (`mvn -pl ops -am package -DskipTests`: in
# ops/target/classes/org/flashdjl/ops/cuda/).
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/fa && tar xJf .devcarry/fa55.txz -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc &&
  cp -r /tmp/fa/land /tmp/land
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
# an H100 would repeat run 130's tier column (the same SASS): stop there
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { echo "not an H200: stopped"; exit 0; }
md5sum /tmp/land/*
bench_general burst "$OUT/general.jsonl" land land
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" land
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" land
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" land
echo "all done at ${SECONDS}s"
