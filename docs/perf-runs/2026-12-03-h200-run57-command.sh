#!/usr/bin/env bash
# session 12 call 3: flash forward vs cuDNN with the clock state controlled on both sides (run 56: the H200 holds
# 1980 MHz for ~1 s of full load, then its power cap brings it to ~1450-1650 MHz; earlier runs timed 20 launches per
# shape in whatever state the previous shape left). Two pacings, each harness twice, interleaved:
#   burst     = --idle-ms 800 (the GPU idles 0.8 s before each shape; 3 warm-up + 20 timed launches: top clock)
#   sustained = --warm-ms 800 --seconds 0.7 (0.8 s untimed back-to-back launches, then ~0.7 s timed: power-capped)
# then FlashBench (the Java launch path of the same bundle) with --idle-ms on a few shapes.
# ours = the bundle's product fatbin (main f14f6a1 kernels, checked in run 55); cuDNN = torch 2.11 SDPA
# (tests/gpu/sdpa_bench.py --backends torch-cudnn). .devcarry: bundle.txz, fc6.xz (flash_check of this tree).
T=$PWD/.devcarry; END=$((SECONDS + 420))
mkdir -p /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc6.xz > /tmp/fc && chmod +x /tmp/fc
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader; md5sum /tmp/fb/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv,noheader -lms 100 > $OUT/smi.csv & SMI=$!
for r in 1 2; do
  for mode in burst sustained; do
    [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
    [ $SECONDS -lt $END ] && timeout 200 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/fb $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"ours\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
    echo "ours $mode rep $r done at ${SECONDS}s"
    [ $SECONDS -lt $END ] && timeout 200 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
    echo "cudnn $mode rep $r done at ${SECONDS}s"
  done
done
kill $SMI
python3 - $OUT <<'PY'
import json,sys,collections,math
out=sys.argv[1]; t=collections.defaultdict(list)
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); t[(j['mode'],j['dtype'],j['hd'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
    g=collections.defaultdict(list); print('==', mode, '(TFLOP/s per rep; ratio of bests)')
    for k in sorted({k[1:5] for k in t if k[0]==mode}):
        o=t.get((mode,)+k+('ours',),[]); c=t.get((mode,)+k+('cudnn',),[])
        if not o or not c: print(k,'missing',o,c); continue
        r=max(o)/max(c); g[k[1]].append(math.log(r))
        print(k,'ours','/'.join('%.0f'%x for x in o),'cudnn','/'.join('%.0f'%x for x in c),'ours/cudnn %.3f'%r)
    for hd in sorted(g): print(mode,'hd',hd,'geomean ours/cudnn %.3f over %d shapes, min %.3f'%(math.exp(sum(g[hd])/len(g[hd])),len(g[hd]),math.exp(min(g[hd]))))
PY
python3 - $OUT/smi.csv <<'PY'
import sys
rows=[l.split(', ') for l in open(sys.argv[1]) if l.strip()]
busy=[r for r in rows if float(r[2].split()[0])>200]
print('smi: %d samples, %d busy (>200 W): SM clock mean %.0f MHz, power mean %.0f W, max temp %s C'%(len(rows),len(busy),sum(float(r[1].split()[0]) for r in busy)/max(1,len(busy)),sum(float(r[2].split()[0]) for r in busy)/max(1,len(busy)),max((r[3] for r in busy),default='-')))
PY
cd /tmp/b && timeout 60 jre/bin/java -cp "lib/*" org.flashdjl.tests.gpu.FlashBench --hd 128 --dtypes fp16 --lengths 1024,16384 --idle-ms 800 2>&1 | tail -4
echo "end at ${SECONDS}s"
