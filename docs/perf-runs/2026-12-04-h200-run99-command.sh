#!/usr/bin/env bash
# Run 99 (session 19): a 2-split row merged over distributed shared memory. decode_bench builds, --kernel auto:
# new = the tree (a94f3f1); pair = the _wide kernels as clusters of 2 CTAs (__cluster_dims__(2,1,1)): with 2 splits the
# pair merges its two states through DSMEM (cluster.sync, map_shared_rank) instead of the partials + fence + row
# counter + last-CTA merge in global memory; other split counts as before. Even split counts only (a cluster of 2
# needs an even grid x). 3 x 4999 / 2 splits is the small correctness shape (reference check).
mkdir -p /tmp/dv && tar xJf .devcarry/dv9.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SH="--shape 3:4999:2512 --shape 8:16384:8192 --shape 1:65536:4096 --shape 4:32768:8192 --shape 2:32768:16384"
for pass in 1 2; do
  for v in new pair; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; echo "$v rc=$?"
  done
done
tail -3 $OUT/decode.err
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
grep -h max_err $OUT/decode.jsonl | sed 's/.*"tag":"\([a-z]*\)".*"L":\([0-9]*\),"splits":\([0-9]*\).*"max_err":\([^,]*\).*/\1 L=\2 splits=\3 max_err=\4/' | sort -u | head -12
