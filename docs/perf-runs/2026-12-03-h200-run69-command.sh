#!/usr/bin/env bash
# Run 69 (session 15): where the paged decode's launch goes on the final kernel: decode_bench's DECODE_TRACE build of
# this tree's paged_decode.cu (session 7's trace patch: per-warp %globaltimer at start, loop end, exit; -ftz=true as
# the header's build line), every chunk size traced (--trace-all), two passes.
# .devcarry/dbv4.txz: db_trace.
mkdir -p /tmp/dbv && tar xJf .devcarry/dbv4.txz -C /tmp/dbv
for pass in 1 2; do timeout 120 /tmp/dbv/db_trace --tag trace$pass --trace-all --reps 10 2>&1 | grep '^{' >> $OUT/decode-trace.jsonl; done
python3 - $OUT/decode-trace.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get('trace') == 1:
        print(j['tag'], j['batch'], j['L'], 'splits', j['splits'], 'span %.1f' % j['span_us'], 'SM end p10/avg/p90/max %.1f/%.1f/%.1f/%.1f' % (j['sm_end_p10_us'], j['sm_end_avg_us'], j['sm_end_p90_us'], j['sm_end_max_us']), 'CTA loop end p50/p90/max %.1f/%.1f/%.1f' % (j['cta_loop_end_p50_us'], j['cta_loop_end_p90_us'], j['cta_loop_end_max_us']), 'tail %.1f' % j['tail_after_last_loop_us'])
    elif 'pct_copy' in j:
        print(j['tag'], j['batch'], j['L'], 'splits', j['splits'], 'ms %.4f' % j['ms'], 'pct %.1f' % j['pct_copy'], 'ok' if j['ok'] else 'BAD')
PY
