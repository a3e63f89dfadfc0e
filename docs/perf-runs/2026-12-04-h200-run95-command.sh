#!/usr/bin/env bash
# Run 95 (session 19): the tree's paged decode with the hd 128 _wide kernels (8 warps of 2 stages, units of 4 tiles,
# taken for a grid of at most one CTA an SM) against HEAD d7f43aa's kernel: decode_bench base (HEAD) / new (--kernel
# auto, the launcher's rule) on the benchmark shapes and the planner's plans, two passes interleaved; compute-sanitizer
# memcheck + racecheck of the _wide kernel (decode_bench --small --reps 0 --kernel wide); the Java GPU suite and
# run-gpu.sh --paged --bench-only (PagedDecodeBench, torch copy + SDPA / cuDNN peers) over the bundle of the tree.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/dv && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv5.txz -C /tmp/dv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SWEEP="--shape 2:32768:4096 --shape 3:40000:3648 --shape 4:32768:8192 --shape 16:8192:8192 --shape 32:4096:4096 --shape 128:2048:2048"
for pass in 1 2; do
  for v in base new; do
    timeout 60 /tmp/dv/db_$v --reps 30 --tag $v >> $OUT/decode.jsonl 2>> $OUT/decode.err
    timeout 90 /tmp/dv/db_$v --reps 30 --tag $v $SWEEP >> $OUT/decode.jsonl 2>> $OUT/decode.err
  done
  echo "pass $pass at ${SECONDS}s"
done
python3 - $OUT/decode.jsonl <<'PY'
import json, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('{'):
        r = json.loads(line)
        rows[(r['batch'], r['L'], r['splits'])].append(f"{r['tag']}{'/' + r['kernel'][0] if 'kernel' in r else ''}:{r['pct_copy']}{'' if r['ok'] else '*'}")
for k, v in rows.items():
    print(k, ' '.join(v))
PY
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_new --small --reps 0 --kernel wide > $OUT/sanitizer-$tool.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/sanitizer-$tool.txt | tr '\n' ' ') at ${SECONDS}s"
done
gpu_suite /tmp/b /tmp/libdjl_torch.so
grep -E "PagedDecodeGpuTest" /tmp/suite.log | grep -c "✔" | sed 's/^/PagedDecodeGpuTest ok: /'
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/paged timeout 240 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/paged.log 2>&1
echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/paged/*.jsonl $OUT/ 2>/dev/null; xz -9 -c /tmp/paged.log > $OUT/paged.log.xz
grep -E "^fp16|^bf16|^flashdjl-paged|^torch-sdpa-cudnn|copy bandwidth" /tmp/paged.log | head -30
