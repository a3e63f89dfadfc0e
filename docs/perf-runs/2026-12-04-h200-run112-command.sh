#!/usr/bin/env bash
# Run 112 (session 21): the launch's head as one link shorter (head: the sequence length, page-list offset and query
# loaded together, the query held in registers until the first page ids are in flight; before, the page-list offset
# was loaded after the query's shared-memory store, a warp issuing in order), and head + the merge's first-pass
# addresses computed before the row counter (hoist), against the tree (base = d156d6e). Checks, three interleaved
# passes, sanitizers on hoist, the SASS prologue of head.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv31.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in head hoist; do
  echo "$v check: $(timeout 60 /tmp/dv/db_$v --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 --shape 1:65536:4096 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok'],j.get('max_err')) for j in map(json.loads,sys.stdin)])")"
  for k in wide narrow compact auto; do echo "$v small $k: $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok, $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":false') bad"; done
done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2 3; do
  for v in base head hoist; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
  for v in base head hoist; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 128:2048:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
for v in base head hoist; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-loop --loop 20 --shape 1:65536:4096 --shape 8:16384:8192 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
grep loop $OUT/decode.jsonl | python3 -c "import json,sys
for l in sys.stdin:
  j=json.loads(l); print(j['tag'], j['batch'], j['L'], j['splits'], 'events', j.get('pct_copy'), 'loop', j.get('pct_copy_loop'))"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do for a in "--shape 3:4999:2512" "--small --kernel wide" "--small --kernel narrow"; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_hoist --reps 0 $a > /tmp/san.txt 2>&1
  echo "$tool [$a] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done; done | tee $OUT/sanitizer.txt
/usr/local/cuda/bin/cuobjdump -sass -fun paged_decode_fp16_hd128_plain_wide /tmp/dv/db_head | grep -v '^\s*/\* 0x' | head -400 | xz > $OUT/sass-head-wide-prologue.txt.xz
