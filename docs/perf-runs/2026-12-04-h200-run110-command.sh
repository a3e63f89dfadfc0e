#!/usr/bin/env bash
# Run 110 (session 21): the ring's K / V rows by bulk copies (cp.async.bulk, one row a lane, a per-stage mbarrier:
# bulk) against the tree (base = d156d6e); bulk3 = bulk with 3 ring stages in the _wide kernels. Checks, three
# interleaved passes over the decode bars' shapes, memcheck / racecheck / synccheck on bulk.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv29.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in bulk bulk3; do
  echo "$v check: $(timeout 60 /tmp/dv/db_$v --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 --shape 1:65536:4096 --shape 7:1000:1000 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok']) for j in map(json.loads,sys.stdin)])")"
  for k in wide narrow compact auto; do echo "$v small $k: $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok, $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":false') bad"; done
done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2 3; do
  for v in base bulk bulk3; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
  for v in base bulk; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 128:2048:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
  for v in base bulk; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-compact --kernel compact --shape 1:65536:4096 --shape 64:4096:4096 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do for a in "--shape 3:4999:2512" "--small --kernel wide" "--small --kernel narrow"; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_bulk --reps 0 $a > /tmp/san.txt 2>&1
  echo "$tool [$a] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done; done | tee $OUT/sanitizer.txt
which cuobjdump nvdisasm 2>&1 | head -3; ls /usr/local/cuda/bin 2>/dev/null | tr '\n' ' '
