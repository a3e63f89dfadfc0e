#!/usr/bin/env bash
# Run 68 (session 15): the tree with the paged decode's K / V copies on ptx.cuh's cp_async_16_stream (.L2::128B
# prefetch size + an L2 evict_first policy, runs 66-67): Java GPU suite; decode_bench (ops/src/test/cuda/decode_bench.cu's
# build line, -ftz=true) of base = main 291ca1d's paged_decode.cu (before this session), l2 = main 2d70856's (.L2::128B
# only), tree = this tree's, interleaved; compute-sanitizer memcheck on the tree's kernel (--small --reps 0);
# run-gpu.sh --paged --bench-only (PagedDecodeBench through the Java launch path, cuDNN / torch flash on contiguous KV
# in the same call, PagedPrefillBench); flash_check --bench (the tree's sm90 fatbin) against cuDNN at hd 64 / 128 / 256,
# sustained then burst, as far as the call's time goes (issue 12's flash bars on the final tree).
# .devcarry: bundle.txz + fc.xz + libdjl_torch.so.xz (tests/gpu/devcarry.sh -o of this tree), dbv3.txz (db_<variant>).
T=$PWD/.devcarry; END=$((SECONDS + 560))
mkdir -p /tmp/b /tmp/dbv /tmp/new && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
tar xJf $T/dbv3.txz -C /tmp/dbv
md5sum /tmp/new/*.fatbin /tmp/dbv/db_*
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
timeout 60 compute-sanitizer --tool memcheck /tmp/dbv/db_tree --small --reps 0 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) at ${SECONDS}s"; grep '^{' /tmp/mc.txt | head -3
dec() { for v in base l2 tree; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/dbv/db_$v --tag $v --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl; done; echo "decode pass at ${SECONDS}s"; }
dec
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/pb timeout 200 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/pb.log 2>&1; echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/pb/bench-paged*.jsonl $OUT/ 2>/dev/null; grep "run-gpu\]   " /tmp/pb.log | tail -6
dec
for mode in sustained burst; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for hd in 128 256 64; do
    [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/new --hd $hd $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"tree\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
    [ $SECONDS -lt $END ] && timeout 60 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd $hd $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
  done
  echo "flash $mode at ${SECONDS}s"
done
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
python3 - $OUT <<'PY'
import json,sys,collections,math
t=collections.defaultdict(dict)
try:
  for l in open(sys.argv[1]+'/flash.jsonl'):
    j=json.loads(l); t[(j['mode'],j['hd'],j['dtype'],j['causal'],j['L'])][j['impl']]=j['tflops']
except FileNotFoundError: pass
g=collections.defaultdict(list)
for k in sorted(t):
  if 'tree' in t[k] and 'cudnn' in t[k]:
    r=t[k]['tree']/t[k]['cudnn']; g[(k[0],k[1])].append(r)
    print('flash', k, '%.0f / %.0f = %.3f'%(t[k]['tree'],t[k]['cudnn'],r))
for k in sorted(g): print('geomean', k, '%.3f'%math.exp(sum(map(math.log,g[k]))/len(g[k])), 'min %.3f'%min(g[k]))
PY
