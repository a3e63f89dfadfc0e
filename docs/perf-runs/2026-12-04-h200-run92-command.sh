#!/usr/bin/env bash
# Run 92 (session 19): where the paged decode kernel loses to a read-only kernel (run 91: decode 85.8 / 92.3-93.3 /
# 98.5 % of the copy rate at 1 x 64k / 8 x 16k / 64 x 4k, a read-only kernel over the same bytes 100-102 / 104 / 106 %).
# decode_bench builds of paged_decode.cu variants (timing-only ones fail the check: "ok":false is expected there):
#   base      the tree's kernel
#   nocomp    the loop waits for its tiles and does no math (the load pipeline alone)
#   lin       pages read in order (the page table ignored): the shuffled page order's cost
#   nocomplin both
#   w8 / w8s2 8 warps a CTA (3 / 2 ring stages a warp; 1 CTA an SM)
#   qreg      the query's A fragments held in registers across tiles (no ldmatrix of Q a tile)
#   w8qreg    both
mkdir -p /tmp/dv && tar xJf .devcarry/dv.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for pass in 1 2; do
  for v in base nocomp lin nocomplin w8 w8s2 qreg w8qreg; do
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
