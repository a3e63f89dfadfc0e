#!/usr/bin/env bash
# Run 100 (session 19): the tree with the _wide_pair kernels (hd 128, clusters of 2 CTAs, taken on sm_90 for a
# one-wave grid of 2 splits). decode_bench (--kernel auto) new = a94f3f1 vs pairfin = the tree, two passes;
# compute-sanitizer memcheck + racecheck on a 2-split shape; the Java GPU suite and run-gpu.sh --paged --bench-only
# over the tree's bundle.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/dv && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv10.txz -C /tmp/dv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 64:4096:4096 --shape 4:32768:8192 --shape 3:4999:2512"
for pass in 1 2; do
  for v in new pairfin; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_pairfin --reps 0 --shape 3:4999:2512 > /tmp/san-$tool.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san-$tool.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san-$tool.txt) ok at ${SECONDS}s"
done
gpu_suite /tmp/b /tmp/libdjl_torch.so
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/paged timeout 240 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/paged.log 2>&1
echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/paged/bench-paged.jsonl /tmp/paged/bench-paged-peers.jsonl $OUT/ 2>/dev/null
grep -E "^flashdjl-paged|^torch-sdpa-cudnn|copy bandwidth \(" /tmp/paged.log | head -16
