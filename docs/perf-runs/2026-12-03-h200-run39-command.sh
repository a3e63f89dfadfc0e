#!/usr/bin/env bash
# session 8 call 7 (PERF run 39): the cascade's packed prefix shapes through TMA vs cp.async, and the maps' L2
# promotion (256 = TensorMaps today, 128, none) on those and on the hd 128 bench; the final fatbin (a488f6b)
T=$PWD/.devcarry
mkdir -p /tmp/fb && tar xJf $T/fb.txz -C /tmp/fb && md5sum /tmp/fb/flash_fwd_sm90.fatbin
nvcc -std=c++17 -O3 -cudart static -o /tmp/fc ops/src/test/cuda/flash_check.cu -lpthread || echo "flash_check build failed"
F="/tmp/fc --kernels sm90 --fatbin-dir /tmp/fb"
for r in 1 2; do for l2 in 256 128 none; do
  timeout 60 $F --bench-packed --ab-tma --l2 $l2 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"l2-$l2\"/" >> $OUT/packed.jsonl
  timeout 60 $F --bench --hd 128 --l2 $l2 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"l2-$l2\"/" >> $OUT/flash.jsonl
done; done
for l2 in 128 none; do timeout 60 $F --check --l2 $l2 > /tmp/chk.txt 2>&1; echo "check l2=$l2 rc=$? $(tail -1 /tmp/chk.txt)"; done
python3 - $OUT <<'PY'
import json,sys,collections
out=sys.argv[1]; t=collections.defaultdict(lambda: collections.defaultdict(list))
for l in open(out+'/packed.jsonl'):
    j=json.loads(l); t[(j['queries'],j['splits'],j['keys'])]['%s tma=%s'%(j['impl'],j['tma'])].append(j['ms'])
for k in sorted(t): print('packed', k, ' | '.join('%s %.4f'%(v,min(x)) for v,x in sorted(t[k].items())))
f=collections.defaultdict(lambda: collections.defaultdict(list))
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); f[(j['dtype'],j['causal'],j['L'])][j['impl']].append(j['tflops'])
for k in sorted(f): print('hd128', k, ' | '.join('%s %.0f'%(v,max(x)) for v,x in sorted(f[k].items())))
PY
