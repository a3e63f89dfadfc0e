#!/usr/bin/env bash
# Run 113 (session 21): the split merge by ticket and release (ready): each split CTA takes a relaxed ticket from the
# row counter when its stream ends (before its own merge), every CTA but the last ticket's releases once its partial
# is written, and the last ticket's CTA waits for the count 2 splits - 1 with acquire loads; against the tree (base =
# d156d6e: one acq_rel atomic after the partial store). Checks, three interleaved passes (events per launch) and
# back-to-back launches, sanitizers on ready.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv32.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
decode_checks /tmp/dv/db_ready
decode_passes 3 "--shape 1:65536:4096 --shape 2:32768:4096 --shape 4:32768:8192 --shape 8:16384:4096 --shape 8:16384:8192 --shape 64:4096:4096 --shape 3:40000:4096" /tmp/dv/db_base /tmp/dv/db_ready
for v in base ready; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 64:4096:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
for v in base ready; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-loop --loop 20 --shape 1:65536:4096 --shape 4:32768:8192 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl | grep -E "narrow|loop"
grep loop $OUT/decode.jsonl | python3 -c "import json,sys
for l in sys.stdin:
  j=json.loads(l); print(j['tag'], j['batch'], j['L'], j['splits'], 'events', j.get('pct_copy'), 'loop', j.get('pct_copy_loop'))"
decode_sanitize /tmp/dv/db_ready
