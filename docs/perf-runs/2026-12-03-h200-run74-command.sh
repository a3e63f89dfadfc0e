#!/usr/bin/env bash
# Run 74 (session 16): the decode split planner's data. decode_bench --shape sweeps (this tree's decode_bench, its
# header's build line) of old = this tree's paged_decode.cu and new = the arrival-time split merge
# (docs/perf-runs/2026-12-03-session16-early-arrival-merge.patch), carried as .devcarry/dbv8.txz; two passes.
# Each row: fp16 GQA 32 / 8, hd 128, pages of 16 in shuffled order, % of the copy rate in the same process.
T=$PWD/.devcarry
mkdir -p /tmp/dbv && tar xJf $T/dbv8.txz -C /tmp/dbv; md5sum /tmp/dbv/db_*
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/gpu.txt
S="--shape 1:65536:8192,4096,2736,2048,1376,1024 --shape 2:32768:8192,4096,2736,2048 --shape 4:32768:8192,4096,2048
   --shape 8:16384:8192,5472,4096,2736,2048,1024 --shape 16:8192:8192,4096,2048 --shape 32:4096:4096,2048,1024
   --shape 64:4096:4096,2048 --shape 128:2048:2048,1024 --shape 3:40000:40000,8000,5008,4000,2512"
for pass in 1 2; do for v in old new; do
  timeout 240 /tmp/dbv/db_$v --tag $v --reps 20 $S 2>&1 | grep '^{' >> $OUT/decode.jsonl; echo "$v pass $pass at ${SECONDS}s"
done; done
python3 - $OUT/decode.jsonl <<'PY'
import json,sys,collections
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
PY
