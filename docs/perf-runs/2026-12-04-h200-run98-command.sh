#!/usr/bin/env bash
# Run 98 (session 19): the split merge's chain (run 96: without the merge 1 x 64k reads +3.8-4.0 points). decode_bench
# builds, --kernel auto: new = 044f278's kernel; m1 = the merge with the lane's first LSE and the first 16 partial rows
# loaded together before the max (one L2 round trip instead of a chain; kBatch 16); timing-only (wrong answers, "*"):
# m1nofence = m1 without the fence before the row counter, m1nosync = m1 without fence and counter (split 0's CTA
# merges at once), nomerge = no merge at all. m1's check: --small --reps 0 on both kernels.
mkdir -p /tmp/dv && tar xJf .devcarry/dv8.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for k in wide narrow; do /tmp/dv/db_m1 --small --reps 0 --kernel $k --tag m1-small-$k >> $OUT/decode.jsonl 2>> $OUT/decode.err; echo "m1 small $k rc=$?"; done
SH="--shape 1:65536:4096 --shape 8:16384:8192,4096 --shape 2:32768:4096 --shape 64:4096:2048"
for pass in 1 2; do
  for v in new m1 m1nofence m1nosync nomerge; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err
  done
  echo "pass $pass at ${SECONDS}s"
done
python3 - $OUT/decode.jsonl <<'PY'
import json, re, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('{'):
        r = json.loads(re.sub(r':(-?nan|-?inf)', ':null', line))
        rows[(r['batch'], r['L'], r['splits'], r['kernel'])].append(f"{r['tag']}:{r['pct_copy']}{'' if r['ok'] else '*'}")
for k, v in rows.items():
    print(k, ' '.join(v))
PY
