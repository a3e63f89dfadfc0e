#!/usr/bin/env bash
# Run 93 (session 19): paged decode candidates after run 92 (8 warps a CTA +2 points at the planner's 1 x 64k / 8 x 16k
# plans; pages in order, i.e. no page-id load, +2.5 at 1 x 64k). decode_bench builds (hd 128 traits
# <stages, warps, ids ahead>), all with the first copies issued before the query slab:
#   base = the tree's kernel (3 stages, 4 warps, page ids 1 tile ahead, query slab first); r1 = <3,4,1> (the reorder
#   alone); a2 / a3 = <3,4,2> / <3,4,3>; w8a1 / w8a2 = <3,8,1> / <3,8,2>; w8s2a1 / a2 / a3 = <2,8,1..3>
mkdir -p /tmp/dv && tar xJf .devcarry/dv2.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for pass in 1 2; do
  for v in base r1 a2 a3 w8a1 w8a2 w8s2a1 w8s2a2 w8s2a3; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v >> $OUT/variants.jsonl 2>> $OUT/variants.err
  done
  echo "pass $pass at ${SECONDS}s"
done
python3 - $OUT/variants.jsonl <<'PY'
import json, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('{'):
        r = json.loads(line)
        rows[(r['batch'], r['L'], r['splits'])].append((r['tag'], r['pct_copy'], r['ok']))
for k, v in rows.items():
    print(k, ' '.join(f"{t}:{p}{'' if ok else '*'}" for t, p, ok in v))
PY
