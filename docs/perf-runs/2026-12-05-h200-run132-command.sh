#!/usr/bin/env bash
# Run 132 (session 30; came on an H200): the general kernel's options against Python's way to get them, torch FlexAttention (Triton,
# torch.compile; SDPA has no softcap / ALiBi / window / sinks), in the same call; on an H200 the land rows are also the
# landed softcap kernels' H200 standing (runs 128-131 were H100s). flash_check --bench-general burst over the landed
# fatbins, then tests/gpu/flex_bench.py on the same shapes and case names (each flex case checked against float64 first):
# fp16 hd 128, bf16 hd 128, fp16 hd 256, each pair summarised as it ends (a short device budget may cut the call).
# carry [".devcarry/fa56.txz"] (run 131's pack: flash_check and land/ = flash_fwd_sm90 cbc87cf2, flash_fwd 67d8d484,
# paged_prefill_sm90 9ba0e04d, as main's pom builds them; run 131's header says how to rebuild it).
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/fa && tar xJf .devcarry/fa56.txz -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/land /tmp/land
md5sum /tmp/land/* /tmp/fc
pair() {  # pair FILE TAG FLASH_CHECK_ARGS FLEX_ARGS
  BENCH_ARGS="$3" bench_general burst "$1" land
  # shellcheck disable=SC2086
  timeout 200 python3 tests/gpu/flex_bench.py $4 >> "$1" 2> "$OUT/flex-$2.txt"
  echo "flex $2 rc=$? at ${SECONDS}s"; grep -v '^#.*err' "$OUT/flex-$2.txt" | tail -3
  python3 tests/gpu/perf_summary.py general "$1" land torch-flex
}
pair "$OUT/general.jsonl" fp16-hd128 "--hd 128" "--dtype fp16 --hd 128"
pair "$OUT/general-bf16.jsonl" bf16-hd128 "--dtype bf16 --hd 128" "--dtype bf16 --hd 128"
pair "$OUT/general-hd256.jsonl" fp16-hd256 "--hd 256" "--dtype fp16 --hd 256"
echo "all done at ${SECONDS}s"
