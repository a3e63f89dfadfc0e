#!/usr/bin/env bash
# Run 66 (session 15): (1) the Java GPU suite over the tree (main 291ca1d: the paged GPU tests' shared ShuffledPages /
# scatter, compiled in session 14, first run here); (2) paged decode variants in the decode_bench harness
# (ops/src/test/cuda/decode_bench.cu's build line, -ftz=true): base = the tree's paged_decode.cu; l2_128 / l2_256 =
# the K / V cp.async with the .L2::128B / .L2::256B prefetch size; ef = an L2 evict_first cache policy on them;
# l2_256ef = both; qa = the query slab loaded by cp.async in its own (oldest) group and waited for after the
# prologue's K / V issues (the Q load's latency under the page-table lookups instead of before them); qa_l2_256 = qa +
# l2_256. (3) hd 128 non-causal L 4k on the persistent form (--persistent-blocks 32) against the default threshold
# (16 query blocks per head: 4k runs the per-tile kernel), with cuDNN in the same call.
# .devcarry: bundle.txz + fc.xz + libdjl_torch.so.xz (tests/gpu/devcarry.sh -o of this tree), dbv.txz (db_<variant>).
T=$PWD/.devcarry; END=$((SECONDS + 560))
mkdir -p /tmp/b /tmp/new /tmp/dbv && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
tar xJf $T/dbv.txz -C /tmp/dbv
md5sum /tmp/new/*.fatbin /tmp/dbv/db_*
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
dec() { for v in base l2_128 l2_256 ef l2_256ef qa qa_l2_256; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/dbv/db_$v --tag $v --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl; done; echo "decode pass at ${SECONDS}s"; }
fl() {  # mode
  local mode=$1 a
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in default p32; do
    extra=""; [ $v = p32 ] && extra="--persistent-blocks 32"
    [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/new --hd 128 $a $extra 2>/dev/null | grep '^{' | grep '"L":4096' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
  done
  [ $SECONDS -lt $END ] && timeout 60 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 128 $a 2>/dev/null | grep '^{' | grep '"L": 4096' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
  echo "flash $mode at ${SECONDS}s"
}
dec; fl burst; dec; fl sustained; fl burst
python3 - $OUT <<'PY'
import json,sys,collections
o=sys.argv[1]
d=collections.defaultdict(list)
for l in open(o+'/decode.jsonl'):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
t=collections.defaultdict(list)
try:
  for l in open(o+'/flash.jsonl'):
    j=json.loads(l); t[(j['mode'],j['dtype'],j['causal'],j['impl'])].append(j['tflops'])
except FileNotFoundError: pass
for k in sorted(t): print('flash', k, ' '.join('%.0f'%x for x in t[k]))
PY
