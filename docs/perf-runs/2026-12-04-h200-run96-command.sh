#!/usr/bin/env bash
# Run 96 (session 19): what is left in the _wide decode kernel at the planner's one-wave plans (decode_bench --kernel
# auto, timing-only variants fail the check, "*"): new = the tree (0c6411c); nomerge = no split merge (the partials are
# written, nobody merges them); lin = pages read in order (the page table ignored: DRAM locality and no page-id loads);
# nomergelin = both; s3 = the _wide kernel with 3 ring stages a warp (213 KB).
mkdir -p /tmp/dv && tar xJf .devcarry/dv6.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 64:4096:4096 --shape 16:8192:8192"
for pass in 1 2; do
  for v in new nomerge lin nomergelin s3; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err
  done
  echo "pass $pass at ${SECONDS}s"
done
python3 - $OUT/decode.jsonl <<'PY'
import json, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('{'):
        r = json.loads(line)
        rows[(r['batch'], r['L'], r['splits'], r['kernel'])].append(f"{r['tag']}:{r['pct_copy']}{'' if r['ok'] else '*'}")
for k, v in rows.items():
    print(k, ' '.join(v))
PY
