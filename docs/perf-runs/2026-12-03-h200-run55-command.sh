#!/usr/bin/env bash
# session 12 call 1: (a) the final tree of session 11 (per-tile kernels + <kernel>_persistent with a static share,
# launcher picks; + seq_offset in flash_common.cuh): Java GPU suite with DJL's JNI, flash_check --check on the bundle's
# fatbin (default, --persistent-blocks 0, --ctas 1); (b) the dynamic job scheduler (d: module job counter, job queue in
# shared memory): --check (default, --ctas 1 / 5, persistent everywhere), memcheck / racecheck; (c) bench interleaved:
# c = main b3c65c6's sm90 fatbin, fb = bundle, d = dynamic (default thresholds), dall = dynamic persistent everywhere;
# cuDNN (torch 2.11 SDPA) in the same call.
# .devcarry: bundle.txz (tests/gpu/bundle.sh; tar of bundle/flashdjl-gpu), fc4.xz (flash_check of this tree),
# cur.txz / dyn.txz (flash_fwd_sm90.fatbin built with the product flags: nvcc -fatbin -O3 -std=c++17 -gencode
# arch=compute_90a,code=sm_90a -ftz=true), libdjl_torch.so.xz (../shared/gpu/djl-pytorch-jni).
T=$PWD/.devcarry; END=$((SECONDS + 560))
mkdir -p /tmp/c /tmp/d /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/cur.txz -C /tmp/c && tar xJf $T/dyn.txz -C /tmp/d
xz -dc $T/fc4.xz > /tmp/fc && chmod +x /tmp/fc && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
FC=/tmp/fc
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader; md5sum /tmp/c/*.fatbin /tmp/d/*.fatbin /tmp/fb/flash_fwd_sm90.fatbin
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30; grep -A2 "hopperPersistent" /tmp/suite.log | head -3
for v in "fb|" "fb|--persistent-blocks 0" "fb|--ctas 1" "d|" "d|--ctas 1" "d|--ctas 5" "d|--persistent-blocks 100000" "d|--persistent-blocks 100000 --ctas 7"; do
  dir=${v%%|*}; a=${v#*|}; n=$dir$(echo "x$a" | tr -d ' -')
  timeout 60 $FC --check --kernels sm90 --fatbin-dir /tmp/$dir $a > $OUT/check-$n.txt 2>&1; echo "check $dir [$a] rc=$? $(tail -1 $OUT/check-$n.txt) at ${SECONDS}s"; grep -m5 FAIL $OUT/check-$n.txt
done
for r in 1 2; do
  for v in c fb d dall; do dir=$v; a=""; [ $v = dall ] && { dir=d; a="--persistent-blocks 100000"; }
    [ $SECONDS -lt $END ] && timeout 60 $FC --bench --kernels sm90 --fatbin-dir /tmp/$dir $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> $OUT/flash.jsonl
  done
  [ $SECONDS -lt $END ] && timeout 90 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn 2>/dev/null >> $OUT/sdpa.jsonl
  echo "bench rep $r done at ${SECONDS}s"
done
python3 - $OUT <<'PY'
import json,sys,collections,math
out=sys.argv[1]; t=collections.defaultdict(lambda: collections.defaultdict(list)); cud=collections.defaultdict(list)
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); t[(j['dtype'],j['hd'],j['causal'],j['L'])][j['impl']].append(j['tflops'])
for l in open(out+'/sdpa.jsonl'):
    j=json.loads(l); cud[(j['dtype'],j['hd'],j['causal'],j['L'])].append(j['tflops'])
V=('c','fb','d','dall'); g=collections.defaultdict(lambda: collections.defaultdict(list))
for k in sorted(t):
    c=max(cud.get(k,[float('nan')])); r={v:max(x) for v,x in t[k].items()}
    print(k, ' '.join('%s %s'%(v,'/'.join('%.0f'%y for y in t[k][v])) for v in V if v in t[k]), '| cudnn %s'%'/'.join('%.0f'%y for y in cud.get(k,[])),
          '| best/cudnn', ' '.join('%s %.3f'%(v, r[v]/c) for v in V if v in r))
    for v in r: g[k[1]][v].append(math.log(r[v]/c))
for hd in sorted(g): print('hd',hd,'geomean of bests vs cudnn', ' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
PY
[ $SECONDS -lt $END ] && { timeout 100 compute-sanitizer --tool memcheck $FC --check --kernels sm90 --fatbin-dir /tmp/d --persistent-blocks 100000 --ctas 3 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck d rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt) at ${SECONDS}s"; grep -m3 -A6 "Invalid\|Error" /tmp/mc.txt | head -14; }
[ $SECONDS -lt $END ] && { timeout 80 compute-sanitizer --tool racecheck --racecheck-report analysis $FC --check --kernels sm90 --fatbin-dir /tmp/d --persistent-blocks 100000 --ctas 2 --max-work 300000 > /tmp/rc.txt 2>&1; echo "racecheck d rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1) $(tail -1 /tmp/rc.txt)"; }
echo "end at ${SECONDS}s"
