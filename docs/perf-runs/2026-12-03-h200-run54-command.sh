#!/usr/bin/env bash
# session 11 call 4: persistent kernels with the launch policy (one CTA per SM up to cfg[4] query blocks per head,
# else a flat grid): checks on the bundle's product fatbin (default, --ctas 1 / 5, --persistent-blocks 0), memcheck of
# the flat grid, bench against the HEAD-before-session fatbin (c) and cuDNN in the same call, Java GPU suite (JNI)
T=$PWD/.devcarry
mkdir -p /tmp/c /tmp/b /tmp/fb && tar xJf $T/cur.txz -C /tmp/c && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc2.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
FC=/tmp/fc
md5sum /tmp/c/*.fatbin /tmp/fb/flash_fwd_sm90.fatbin
for a in "" "--ctas 1" "--ctas 5" "--persistent-blocks 0"; do n=$(echo "x$a" | tr -d ' -')
  timeout 100 $FC --check --kernels sm90 --fatbin-dir /tmp/fb $a > $OUT/check-$n.txt 2>&1; echo "check [$a] rc=$? $(tail -1 $OUT/check-$n.txt)"; grep -m5 FAIL $OUT/check-$n.txt
done
timeout 100 compute-sanitizer --tool memcheck $FC --check --kernels sm90 --fatbin-dir /tmp/fb --persistent-blocks 0 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck flat rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"; grep -m3 -A6 "Invalid\|Error" /tmp/mc.txt | head -14
for r in 1 2; do for v in c fb; do
  timeout 60 $FC --bench --kernels sm90 --fatbin-dir /tmp/$v 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> $OUT/flash.jsonl
done
timeout 100 python3 tests/gpu/sdpa_bench.py 2>/dev/null | grep cudnn >> $OUT/sdpa.jsonl
done
python3 - $OUT <<'PY'
import json,sys,collections,math
out=sys.argv[1]; t=collections.defaultdict(lambda: collections.defaultdict(list)); cud=collections.defaultdict(list)
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); t[(j['dtype'],j['hd'],j['causal'],j['L'])][j['impl']].append(j['tflops'])
for l in open(out+'/sdpa.jsonl'):
    j=json.loads(l); cud[(j['dtype'],j['hd'],j['causal'],j['L'])].append(j['tflops'])
med=lambda x: max(x)
g=collections.defaultdict(lambda: collections.defaultdict(list))
for k in sorted(t):
    c=med(cud.get(k,[float('nan')])); r={v:med(x) for v,x in t[k].items()}
    print(k, ' '.join('%s %s'%(v,'/'.join('%.0f'%y for y in t[k][v])) for v in ('c','fb')), '| cudnn %s'%'/'.join('%.0f'%y for y in cud.get(k,[])),
          '| best new/c %.3f | c/cud %.3f new/cud %.3f'%(r['fb']/r['c'], r['c']/c, r['fb']/c))
    for v in r: g[k[1]][v].append(math.log(r[v]/c))
for hd in sorted(g): print('hd',hd,'geomean of bests vs cudnn', ' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
PY
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40; grep -A2 "hopperPersistent" /tmp/suite.log | head -4
