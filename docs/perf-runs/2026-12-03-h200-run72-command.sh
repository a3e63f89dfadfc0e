#!/usr/bin/env bash
# Run 72 (session 16): which part of the Java launcher's one-buffer page table costs the split decode launches 2-4
# points (runs 70-71). decode_bench (this tree's kernel, built on the workstation with
#   sed 's/extern "C" __device__ int/__device__ int/' ops/src/main/cuda/paged_decode.cu > /tmp/x.cu
#   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I ops/src/main/cuda -DDECODE_SRC='"/tmp/x.cu"' \
#     -o .devcarry/db_tab ops/src/test/cuda/decode_bench.cu
# and carried), three interleaved passes: sep = four allocations, one = --one-table (the launcher's layout),
# aln = --one-table --align-indices (indices on 128 bytes), sec = --one-table --align-sections (every section on 256).
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/gpu.txt
for pass in 1 2 3; do for v in sep one aln sec; do
  a=""; [ $v = one ] && a="--one-table"; [ $v = aln ] && a="--one-table --align-indices"
  [ $v = sec ] && a="--one-table --align-sections"
  timeout 60 .devcarry/db_tab --tag $v --reps 30 $a 2>&1 | grep '^{' >> $OUT/decode.jsonl
done; done
python3 - $OUT/decode.jsonl <<'PY'
import json,sys,collections
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
PY
