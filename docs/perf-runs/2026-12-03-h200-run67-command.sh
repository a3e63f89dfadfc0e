#!/usr/bin/env bash
# Run 67 (session 15): the tree with the paged decode's K / V copies on cp.async .L2::128B (ptx.cuh cp_async_16_line)
# and the hd 128 plain kernel's persistent limit at 32 query blocks per head (run 66): Java GPU suite, flash_check
# --check --kernels all, PagedDecodeBench + decode_peer_bench.py (cuDNN on contiguous KV) + PagedPrefillBench through
# run-gpu.sh --paged --bench-only, flash --bench hd 128 against cuDNN (sustained); decode_bench variants of the tree's
# kernel (ops/src/test/cuda/decode_bench.cu's build line, -ftz=true): new = the tree; ef = new + an L2 evict_first
# cache policy on the K / V copies; qa = new + the query slab by cp.async waited for after the prologue's K / V
# issues; mg = new + the split merge in one L2 round trip when a row has <= 16 splits (its LSE and every
# partial o row loaded together; the tree's merge reads the LSEs twice and the rows 8 at a time); trace = new + DECODE_TRACE (per-warp %globaltimer at start, loop end, exit; session 7's trace patch).
# .devcarry: bundle.txz + fc.xz + libdjl_torch.so.xz (tests/gpu/devcarry.sh -o of this tree), dbv2.txz (db_<variant>).
T=$PWD/.devcarry; END=$((SECONDS + 570))
mkdir -p /tmp/b /tmp/new /tmp/dbv && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
tar xJf $T/dbv2.txz -C /tmp/dbv
md5sum /tmp/new/*.fatbin /tmp/dbv/db_*
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/new > /tmp/check.txt 2>&1; echo "check rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
dec() { for v in new ef qa mg; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/dbv/db_$v --tag $v --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl; done; echo "decode pass at ${SECONDS}s"; }
dec
[ $SECONDS -lt $END ] && timeout 60 /tmp/dbv/db_trace --tag trace --reps 10 2>&1 | grep '^{' >> $OUT/decode-trace.jsonl
echo "trace at ${SECONDS}s"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/pb timeout 200 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/pb.log 2>&1; echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/pb/bench-paged*.jsonl $OUT/ 2>/dev/null; tail -5 /tmp/pb.log
dec
for mode in sustained; do
  a="--warm-ms 800 --seconds 0.7"
  [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/new --hd 128 $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"new\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
  [ $SECONDS -lt $END ] && timeout 60 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 128 $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
done
echo "flash at ${SECONDS}s"
python3 - $OUT <<'PY'
import json,sys,collections
o=sys.argv[1]
d=collections.defaultdict(list)
for l in open(o+'/decode.jsonl'):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
try:
  for l in open(o+'/decode-trace.jsonl'):
    if '"trace"' in l: print(l.strip())
except FileNotFoundError: pass
t=collections.defaultdict(list)
try:
  for l in open(o+'/flash.jsonl'):
    j=json.loads(l); t[(j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
except FileNotFoundError: pass
for k in sorted(t):
  if k[3]=='new':
    c=t.get((k[0],k[1],k[2],'cudnn'))
    print('flash', k[:3], 'new %.0f'%max(t[k]), 'cudnn %.0f'%max(c) if c else '', '%.3f'%(max(t[k])/max(c)) if c else '')
PY
