#!/usr/bin/env bash
# Run 107 (session 20): the _wide_pair merge by push: each CTA of a 2-split row writes the items its peer owns into a
# slot of the peer's shared memory beyond the ring (8,256 B more a CTA), the pair meets at one cluster barrier and each
# CTA merges its own items from local shared memory (instead of barrier, remote loads, stores, barrier); the "CTA has
# started" rule for distributed shared memory by barrier.cluster.arrive at entry / wait before the first push.
# decode_bench tree (b78e9eb) vs push, three passes; checks and compute-sanitizer on a 2-split shape.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv26.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in tree push; do echo "$v check: $(timeout 60 /tmp/dv/db_$v --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok']) for j in map(json.loads,sys.stdin)])")"; done
SH="--shape 8:16384:8192 --shape 4:16384:8192 --shape 16:8192:4096 --shape 1:65536:4096"
for pass in 1 2 3; do for v in tree push; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_push --reps 0 --shape 3:4999:2512 > /tmp/san.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done | tee $OUT/sanitizer.txt
