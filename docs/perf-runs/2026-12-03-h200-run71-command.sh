#!/usr/bin/env bash
# Run 71 (session 15): the Java path's split launches read 3-4 points under decode_bench (run 70: 1 x 64k 80.6-81.2 vs
# 84.5-84.6, 8 x 16k 87.9 vs 90.7-91.1; no split 96.1 vs 96.3: same). One difference on the split path: the Java
# launcher uploads [indptr | indices | seq lens | split counters] as one int32 buffer (PagedStepBuffers), the harness
# used four allocations. decode_bench (this tree's, product nvcc flags for sm_90a) with and without --one-table, interleaved.
# First call (run 71): sep / one. Second call (run 71b, decode.jsonl there): sep / one / pad = --one-table
# --pad-counters (the counters on their own 128-byte line after the table). A third call with aln = --one-table
# --align-indices (as below) was refused: the session's device time was spent.
mkdir -p /tmp/dbv && tar xJf .devcarry/dbv6.txz -C /tmp/dbv
for pass in 1 2; do for v in sep one aln; do
  a=""; [ $v = one ] && a="--one-table"; [ $v = pad ] && a="--one-table --pad-counters"; [ $v = aln ] && a="--one-table --align-indices"
  timeout 60 /tmp/dbv/db_tab --tag $v --reps 30 $a 2>&1 | grep '^{' >> $OUT/decode.jsonl
done; done
python3 - $OUT/decode.jsonl <<'PY'
import json,sys,collections
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
PY
