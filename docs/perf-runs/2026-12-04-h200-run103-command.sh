#!/usr/bin/env bash
# Run 103 (session 20): the split merge's chain after the bank fix (bank = the tree, d894161): the last CTA's loads in
# one round trip (b1r: session 19's patch, docs/perf-runs/2026-12-04-session19-merge-one-round.patch, on this tree),
# the row counter as one acq_rel atomic after the CTA barrier instead of two __threadfence (acq: CUTLASS's semaphore
# pattern), both (b1racq); a trace build of b1racq. decode_bench, three passes; the small check on every variant.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv22.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in bank b1r acq b1racq; do for k in wide narrow; do echo "$v small $k: $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok, $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":false') bad"; done; done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 8:16384:4096 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2 3; do
  for v in bank b1r acq b1racq; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
for pass in 1 2; do timeout 90 /tmp/dv/db_trace3 --tag trace$pass --reps 10 --trace-all --shape 1:65536:4096 --shape 8:16384:4096 --shape 4:32768:8192 2>&1 | grep '^{' | grep -v sm_end_us >> $OUT/decode-trace.jsonl; done
grep merge_trace $OUT/decode-trace.jsonl
grep '"trace":1' $OUT/decode-trace.jsonl | python3 -c "
import json,sys
for l in sys.stdin:
    j=json.loads(l); print(j['tag'],j['batch'],j['L'],j['splits'],'span',j['span_us'],'loop end max',j['cta_loop_end_max_us'],'tail',j['tail_after_last_loop_us'],'after loop p50/max',j['cta_after_loop_p50_us'],j['cta_after_loop_max_us'])"
