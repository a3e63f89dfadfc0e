#!/usr/bin/env bash
# Run 111 (session 21): the stale-max rule in the paged decode (a row keeps its running max until a tile raises it by
# more than 8 in log2 units; O rescaled only when a row of the warp moved: stale) against the tree (base = d156d6e).
# Checks, three interleaved passes over the decode bars' shapes (wide / pair / narrow / compact), sanitizers on stale,
# and the SASS of base's _wide merge (cuobjdump is on this machine, not on the build machine).
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv30.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in stale; do
  echo "$v check: $(timeout 60 /tmp/dv/db_$v --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 --shape 1:65536:4096 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok'],j.get('max_err')) for j in map(json.loads,sys.stdin)])")"
  for k in wide narrow compact auto; do echo "$v small $k: $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok, $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":false') bad"; done
done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2 3; do
  for v in base stale; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
  for v in base stale; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 128:2048:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
  for v in base stale; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-compact --kernel compact --shape 1:65536:4096 --shape 64:4096:4096 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do for a in "--shape 3:4999:2512" "--small --kernel wide"; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_stale --reps 0 $a > /tmp/san.txt 2>&1
  echo "$tool [$a] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done; done | tee $OUT/sanitizer.txt
/usr/local/cuda/bin/cuobjdump -sass -fun paged_decode_fp16_hd128_plain_wide /tmp/dv/db_base > $OUT/sass-base-wide.txt 2>&1
/usr/local/cuda/bin/cuobjdump -sass -fun paged_decode_fp16_hd128_plain_wide /tmp/dv/db_stale > $OUT/sass-stale-wide.txt 2>&1
wc -l $OUT/sass-*.txt
