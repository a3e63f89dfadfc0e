#!/usr/bin/env bash
# Run 94 (session 19): the hd 128 decode kernel with 8 warps of 2 stages (one CTA an SM), as committed, against the
# tree's (4 warps of 3 stages): decode_bench base / new on the benchmark shapes and the planner's plans of run 74's
# sweep, two passes interleaved, plus the unit size (u4 / u16 = kUnit 4 / 16 on the new kernel); then the Java GPU
# suite and run-gpu.sh --paged --bench-only (PagedDecodeBench, torch copy + SDPA / cuDNN peers, paged prefill) over
# the bundle of the new tree.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/dv && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv3.txz -C /tmp/dv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SWEEP="--shape 2:32768:4096,2048 --shape 3:40000:3648 --shape 4:32768:8192 --shape 16:8192:8192 --shape 32:4096:4096 --shape 128:2048:2048"
for pass in 1 2; do
  for v in base new u4 u16; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v >> $OUT/variants.jsonl 2>> $OUT/variants.err
  done
  for v in base new; do
    timeout 90 /tmp/dv/db_$v --reps 30 --tag $v $SWEEP >> $OUT/sweep.jsonl 2>> $OUT/variants.err
  done
  echo "pass $pass at ${SECONDS}s"
done
python3 - $OUT/variants.jsonl $OUT/sweep.jsonl <<'PY'
import json, sys, collections
rows = collections.defaultdict(list)
for f in sys.argv[1:]:
    for line in open(f):
        if line.startswith('{'):
            r = json.loads(line)
            rows[(r['batch'], r['L'], r['splits'])].append((r['tag'], r['pct_copy'], r['ok']))
for k, v in rows.items():
    print(k, ' '.join(f"{t}:{p}{'' if ok else '*'}" for t, p, ok in v))
PY
gpu_suite /tmp/b /tmp/libdjl_torch.so
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/paged timeout 240 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/paged.log 2>&1
echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/paged/*.jsonl $OUT/ 2>/dev/null; xz -9 -c /tmp/paged.log > $OUT/paged.log.xz
grep -E "copy bandwidth|%copy|x  *[0-9]+k|^ *[0-9]+ x" /tmp/paged.log | head -40
