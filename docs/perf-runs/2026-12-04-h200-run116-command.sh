#!/usr/bin/env bash
# Run 116 (session 22): the paged decode's tile math transposed (S^T = K Q^T, O^T = V^T P^T: the 16 tokens of a tile
# on the mma's M side, the GQA group's heads on its N side, one m16n8k16 per 16 dims for G <= 8 where the head-major
# slab needed two; P^T through movmatrix). decode_bench base (main 8dadb0c) / swap: checks, two interleaved passes,
# back to back, sanitizers; the Java GPU suite over session 21's bundle with paged_decode.fatbin replaced by swap's.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/dv /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv40.txz -C /tmp/dv
xz -dc $T/paged_decode.fatbin.xz > /tmp/fb/paged_decode.fatbin && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
md5sum /tmp/fb/paged_decode.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
decode_checks /tmp/dv/db_swap
decode_passes 2 "--shape 1:65536:4096 --shape 8:16384:8192 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096" /tmp/dv/db_base /tmp/dv/db_swap
for v in base swap; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 128:2048:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
for v in base swap; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-loop --loop 20 --shape 1:65536:4096 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
grep loop $OUT/decode.jsonl | python3 -c "import json,sys
for l in sys.stdin:
  j=json.loads(l); print(j['tag'], j['batch'], j['L'], j['splits'], 'events', j.get('pct_copy'), 'loop', j.get('pct_copy_loop'))"
echo "benches done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do
  timeout 60 $CS --tool $tool --print-limit 20 /tmp/dv/db_swap --reps 0 --small --kernel wide > /tmp/san.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done | tee $OUT/sanitizer.txt
swap_ops_fatbins /tmp/b/lib /tmp/fb paged_decode.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
