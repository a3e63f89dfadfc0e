#!/usr/bin/env bash
# session 11 call 2: persistent plain / causal kernels (hd 64 / 128): check (default grid, --ctas 1 / 5), memcheck,
# bench interleaved against the tree's HEAD fatbin (cur) and the same source per tile (np), cuDNN in the same call
T=$PWD/.devcarry
mkdir -p /tmp/c /tmp/n /tmp/np && tar xJf $T/cur.txz -C /tmp/c && tar xJf $T/new.txz -C /tmp/n && tar xJf $T/np.txz -C /tmp/np
FC=/tmp/n/flash_check
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
md5sum /tmp/c/*.fatbin /tmp/n/*.fatbin /tmp/np/*.fatbin
for g in 0 1 5; do a=""; [ $g -gt 0 ] && a="--ctas $g"
  timeout 100 $FC --check --kernels sm90 --fatbin-dir /tmp/n $a > $OUT/check-ctas$g.txt 2>&1; echo "check ctas=$g rc=$? $(tail -1 $OUT/check-ctas$g.txt)"; grep -m5 FAIL $OUT/check-ctas$g.txt
done
timeout 100 compute-sanitizer --tool memcheck $FC --check --kernels sm90 --fatbin-dir /tmp/n --ctas 3 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"; grep -m3 -A6 "Invalid\|Error" /tmp/mc.txt | head -14
timeout 100 compute-sanitizer --tool racecheck --racecheck-report analysis $FC --check --kernels sm90 --fatbin-dir /tmp/n --ctas 2 --max-work 300000 > /tmp/rc.txt 2>&1; echo "racecheck rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1) $(tail -1 /tmp/rc.txt)"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv,noheader,nounits -lms 50 > /tmp/smi.csv &
SMI=$!
seg() { echo "$1 $(date '+%Y/%m/%d %H:%M:%S.%N')" >> /tmp/seg.txt; }
for r in 1 2; do for v in c n np; do
  seg "start $v$r"
  timeout 60 $FC --bench --kernels sm90 --fatbin-dir /tmp/$v 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> $OUT/flash.jsonl
done
seg "start cudnn$r"
timeout 100 python3 tests/gpu/sdpa_bench.py 2>/dev/null | grep cudnn >> $OUT/sdpa.jsonl
done
seg "end x"
kill $SMI
python3 - <<'PY2'
import datetime
def t(s): return datetime.datetime.strptime(s.strip()[:26],'%Y/%m/%d %H:%M:%S.%f').timestamp()
smi=[]
for l in open('/tmp/smi.csv'):
    f=l.split(',')
    try: smi.append((t(f[0]),float(f[1]),float(f[2])))
    except Exception: pass
segs=[(l.split()[1],t(' '.join(l.split()[2:]))) for l in open('/tmp/seg.txt')]
for (n,a),(_,b) in zip(segs,segs[1:]):
    w=[s for s in smi if a<=s[0]<=b and s[2]>250]
    if w: print('segment %-8s busy samples %4d  mean SM clock %.0f MHz  mean power %.0f W'%(n,len(w),sum(x[1] for x in w)/len(w),sum(x[2] for x in w)/len(w)))
PY2
for v in c np; do timeout 60 $FC --bench-general --kernels sm90 --fatbin-dir /tmp/$v --hd 128 2>/dev/null | grep '^{' | sed "s/^{/{\"v\":\"$v\",/" >> $OUT/general.jsonl; done
python3 - $OUT <<'PY'
import json,sys,collections,math
out=sys.argv[1]; t=collections.defaultdict(lambda: collections.defaultdict(list)); cud=collections.defaultdict(list)
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); t[(j['dtype'],j['hd'],j['causal'],j['L'])][j['impl']].append(j['tflops'])
for l in open(out+'/sdpa.jsonl'):
    j=json.loads(l); cud[(j['dtype'],j['hd'],j['causal'],j['L'])].append(j['tflops'])
g=collections.defaultdict(lambda: collections.defaultdict(list))
for k in sorted(t):
    c=max(cud.get(k,[float('nan')])); r={v:max(x) for v,x in t[k].items()}
    print(k, ' '.join('%s %s'%(v,'/'.join('%.0f'%y for y in t[k][v])) for v in ('c','n','np')), '| cudnn %s'%'/'.join('%.0f'%y for y in cud.get(k,[])),
          '| n/c %.3f n/np %.3f | c/cud %.3f n/cud %.3f'%(r['n']/r['c'], r['n']/r['np'], r['c']/c, r['n']/c))
    for v in r: g[k[1]][v].append(math.log(r[v]/c))
for hd in sorted(g): print('hd',hd,'geomean vs cudnn', ' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
for l in open(out+'/general.jsonl'): print(l.strip()[:200])
PY
