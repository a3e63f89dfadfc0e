#!/usr/bin/env bash
# Run 70 (session 15): why the Java path reads 2-4 points under decode_bench on the same kernel. decode_bench of the
# tree's paged_decode.cu built with the product's nvcc flags (ops/pom.xml: -gencode compute_80/sm_80, compute_90a/sm_90a,
# compute_80 PTX; no -ftz: db_prod) and the same plus -ftz=true (db_ftz; the harness's documented build line also has
# -ftz=true), interleaved, next to PagedDecodeBench (run-gpu.sh --paged --bench-only) over the product fatbin.
# .devcarry: bundle.txz (run 68's: the final tree's fatbins) + libdjl_torch.so.xz, dbv5.txz (db_prod, db_ftz).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/dbv /tmp/new && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dbv5.txz -C /tmp/dbv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null; md5sum /tmp/new/paged_decode.fatbin
dec() { for v in prod ftz; do timeout 60 /tmp/dbv/db_$v --tag $v --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl; done; echo "decode pass at ${SECONDS}s"; }
dec
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/pb timeout 150 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/pb.log 2>&1; echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/pb/bench-paged.jsonl /tmp/pb/bench-paged-peers.jsonl $OUT/ 2>/dev/null
dec
python3 - $OUT <<'PY'
import json,sys,collections
o=sys.argv[1]
d=collections.defaultdict(list)
for l in open(o+'/decode.jsonl'):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
for f in ('bench-paged.jsonl','bench-paged-peers.jsonl'):
  try:
    for l in open(o+'/'+f):
      j=json.loads(l)
      if 'pct_copy' in j and j.get('hd',128)==128: print(f.split('.')[0], j.get('impl'), j.get('dtype'), j.get('batch'), j.get('L'), j.get('page'), j.get('splits',''), j['pct_copy'])
  except FileNotFoundError: pass
PY
