#!/usr/bin/env bash
# Run 102 (session 20): the split merge's chain link by link (decode_bench's DECODE_MERGE_TRACE build: the merging
# CTA's %globaltimer stamps from its loop end to its exit, with an L2-hit reload of the same partial lines as the
# reference), and two candidates: the partials stored with an L2 evict_last hint (evl), the warps' merge area padded
# so that their float2 writes do not share a bank window (bank), both. decode_bench, two passes.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv21.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in tree evl bank both; do timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel wide 2>&1 | grep -c '"ok":true' | sed "s/^/$v small wide ok: /"; timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel narrow 2>&1 | grep -c '"ok":false' | sed "s/^/$v small narrow bad: /"; done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 8:16384:4096 --shape 4:32768:8192 --shape 2:32768:4096"
for pass in 1 2; do
  for v in tree evl bank both; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
for pass in 1 2; do timeout 90 /tmp/dv/db_trace2 --tag trace$pass --reps 10 --trace-all --shape 1:65536:4096 --shape 8:16384:4096 --shape 4:32768:8192 2>&1 | grep '^{' | grep -v sm_end_us >> $OUT/decode-trace.jsonl; done
grep merge_trace $OUT/decode-trace.jsonl
grep '"trace":1' $OUT/decode-trace.jsonl | python3 -c "
import json,sys
for l in sys.stdin:
    j=json.loads(l); print(j['tag'],j['batch'],j['L'],j['splits'],'span',j['span_us'],'loop end max',j['cta_loop_end_max_us'],'tail',j['tail_after_last_loop_us'],'after loop p50/max',j['cta_after_loop_p50_us'],j['cta_after_loop_max_us'])"
