#!/usr/bin/env bash
# Run 114 (session 21): run 113's split merge by ticket and release, fixed (tickets count in the counter's low 16
# bits, releases add 2^16: run 113's version let a release count as a ticket and hung). decode_bench base (d156d6e) /
# ready, checks, two interleaved passes and back-to-back launches, sanitizers on 3 x 4999 / 2; the Java GPU suite over
# session 20's bundle (Java unchanged since) with its paged_decode.fatbin replaced by ready's (md5 66b25c5b).
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/dv /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv33.txz -C /tmp/dv
xz -dc $T/paged_decode.fatbin.xz > /tmp/fb/paged_decode.fatbin && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
decode_checks /tmp/dv/db_ready
decode_passes 2 "--shape 1:65536:4096 --shape 2:32768:4096 --shape 4:32768:8192 --shape 8:16384:4096 --shape 64:4096:2048" /tmp/dv/db_base /tmp/dv/db_ready
for v in base ready; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-loop --loop 20 --shape 1:65536:4096 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
grep loop $OUT/decode.jsonl | python3 -c "import json,sys
for l in sys.stdin:
  j=json.loads(l); print(j['tag'], j['batch'], j['L'], j['splits'], 'events', j.get('pct_copy'), 'loop', j.get('pct_copy_loop'))"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do
  timeout 60 $CS --tool $tool --print-limit 20 /tmp/dv/db_ready --reps 0 --shape 3:4999:2512 --kernel wide > /tmp/san.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done | tee $OUT/sanitizer.txt
swap_ops_fatbins /tmp/b/lib /tmp/fb paged_decode.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
