#!/usr/bin/env bash
# Run 132 (session 29): the landed flash_fwd_sm90.fatbin (cbc87cf2) on an H200, for the standing table's softcap row
# (runs 128-131 were H100s). --bench-general burst, fp16 hd 128 twice, bf16 hd 128 once, fp16 hd 256 once (ratios to our plain /
# causal kernels of the same pass). Stops at once on a machine that is not an H200 (an H100 repeats run 131's land).
# carry [".devcarry/fa56.txz"] (run 131's pack: flash_check and land/ = flash_fwd_sm90 cbc87cf2, flash_fwd 67d8d484,
# paged_prefill_sm90 9ba0e04d, as main's pom builds them; its header says how).
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { echo "not an H200: stopped"; exit 0; }
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/fa && tar xJf .devcarry/fa56.txz -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/land /tmp/land
md5sum /tmp/land/* /tmp/fc
# hd 128 / 256 first (the bar's head dims), each pass summarised as it ends (a short device budget may cut the call)
BENCH_ARGS="--hd 128" bench_general burst "$OUT/general.jsonl" land land
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" land
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" land
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" land
BENCH_ARGS="--hd 256" bench_general burst "$OUT/general.jsonl" land
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" land
echo "all done at ${SECONDS}s"
