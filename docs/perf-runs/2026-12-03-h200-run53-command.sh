#!/usr/bin/env bash
# session 11 call 3: persistent plain / causal kernels (hd 64 / 128) with causal pairs: check (default grid, --ctas 1 / 5),
# memcheck, racecheck, bench interleaved against the tree's HEAD-before-session fatbin (c), cuDNN in the same call;
# then the Java GPU suite (bundle of this tree, DJL's JNI)
T=$PWD/.devcarry
mkdir -p /tmp/c /tmp/n /tmp/b /tmp/fb && tar xJf $T/cur.txz -C /tmp/c && tar xJf $T/new.txz -C /tmp/n && tar xJf $T/bundle.txz -C /tmp/b
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
FC=/tmp/n/flash_check
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
md5sum /tmp/c/*.fatbin /tmp/n/*.fatbin /tmp/fb/flash_fwd_sm90.fatbin
for g in 0 1 5; do a=""; [ $g -gt 0 ] && a="--ctas $g"
  timeout 100 $FC --check --kernels sm90 --fatbin-dir /tmp/fb $a > $OUT/check-ctas$g.txt 2>&1; echo "check ctas=$g rc=$? $(tail -1 $OUT/check-ctas$g.txt)"; grep -m5 FAIL $OUT/check-ctas$g.txt
done
timeout 100 compute-sanitizer --tool memcheck $FC --check --kernels sm90 --fatbin-dir /tmp/fb --ctas 3 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"; grep -m3 -A6 "Invalid\|Error" /tmp/mc.txt | head -14
timeout 100 compute-sanitizer --tool racecheck --racecheck-report analysis $FC --check --kernels sm90 --fatbin-dir /tmp/fb --ctas 2 --max-work 300000 > /tmp/rc.txt 2>&1; echo "racecheck rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1) $(tail -1 /tmp/rc.txt)"
timeout 100 compute-sanitizer --tool synccheck $FC --check --kernels sm90 --fatbin-dir /tmp/fb --ctas 2 --max-work 300000 > /tmp/sc.txt 2>&1; echo "synccheck rc=$? $(grep 'ERROR SUMMARY' /tmp/sc.txt | head -1) $(tail -1 /tmp/sc.txt)"
for r in 1 2 3; do for v in c n; do d=/tmp/$v
  timeout 60 $FC --bench --kernels sm90 --fatbin-dir $d 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> $OUT/flash.jsonl
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
g=collections.defaultdict(lambda: collections.defaultdict(list))
for k in sorted(t):
    c=sorted(cud.get(k,[float('nan')]))[len(cud.get(k,[1]))//2]; r={v:sorted(x)[len(x)//2] for v,x in t[k].items()}
    print(k, ' '.join('%s %s'%(v,'/'.join('%.0f'%y for y in t[k][v])) for v in ('c','n')), '| cudnn %s'%'/'.join('%.0f'%y for y in cud.get(k,[])),
          '| medians new/c %.3f | c/cud %.3f new/cud %.3f'%(r['n']/r['c'], r['c']/c, r['n']/c))
    for v in r: g[k[1]][v].append(math.log(r[v]/c))
for hd in sorted(g): print('hd',hd,'geomean of medians vs cudnn', ' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
PY
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 240 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40; grep -A3 "hopperPersistent" /tmp/suite.log | head -8
cd /tmp/b && OUT=/tmp/paged timeout 240 ./run-gpu.sh --paged > /tmp/paged.log 2>&1; echo "paged rc=$?"
grep -E "tests (successful|failed)|exit [0-9]+ in" /tmp/paged.log; grep -A10 "PagedPrefillBench on" /tmp/paged.log | head -11; grep -E "decode|copy" /tmp/paged.log | grep -E "%" | head -8
cp /tmp/paged.log $OUT/paged.log 2>/dev/null
