#!/usr/bin/env bash
# session 8 call 6 (PERF run 38): the final tree (TMA + hd 128 ping-pong + the tensor-map cache) through flash_check
# (check, memcheck, racecheck), against the committed kernels (base2: 2d335ea's plain / causal) and cuDNN, the Java
# GPU suite, and the cascade bench
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/v /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/vpack3.txz -C /tmp/v
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
md5sum /tmp/fb/flash_fwd_sm90.fatbin
nvcc -std=c++17 -O3 -cudart static -o /tmp/fc ops/src/test/cuda/flash_check.cu -lpthread || echo "flash_check build failed"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb > $OUT/check.txt 2>&1; echo "check rc=$? $(tail -1 $OUT/check.txt) | $(grep 'TMA maps' $OUT/check.txt)"; grep -m3 FAIL $OUT/check.txt
timeout 60 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"; grep -m3 -A4 "Invalid\|Error" /tmp/mc.txt | head -12
timeout 90 compute-sanitizer --tool racecheck --racecheck-report analysis /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb --max-work 1000000 > /tmp/rc.txt 2>&1; echo "racecheck rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1) $(tail -1 /tmp/rc.txt)"
timeout 60 compute-sanitizer --tool synccheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb --max-work 1000000 > /tmp/sc.txt 2>&1; echo "synccheck rc=$? $(grep 'ERROR SUMMARY' /tmp/sc.txt | head -1) $(tail -1 /tmp/sc.txt)"
for r in 1 2; do for v in base2 fb; do d=/tmp/v/$v; [ $v = fb ] && d=/tmp/fb
  timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir $d 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> $OUT/flash.jsonl
done; done
timeout 100 python3 tests/gpu/sdpa_bench.py > $OUT/sdpa.jsonl 2>/dev/null
FLASHDJL_DJL_JNI=/tmp/v/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|aborted|found)|hopperCalls" /tmp/suite.log > $OUT/suite-summary.txt; grep -B2 -A8 "\[X\]" /tmp/suite.log | head -30
FLASHDJL_DJL_JNI=/tmp/v/libdjl_torch.so OUT=/tmp/pb timeout 100 /tmp/b/run-gpu.sh --cascade --bench-only > /tmp/pb.log 2>&1; echo "cascade rc=$?"
cp /tmp/pb/bench-cascade.jsonl $OUT/ 2>/dev/null; grep -E "^ +(128|32|64) " /tmp/pb.log
cat $OUT/suite-summary.txt | tr -s ' ' | tr '\n' ' '; echo
python3 - $OUT <<'PY'
import json,sys,collections,math
out=sys.argv[1]; t=collections.defaultdict(dict); cud={}
for l in open(out+'/flash.jsonl'):
    j=json.loads(l); k=(j['dtype'],j['hd'],j['causal'],j['L']); t[k][j['impl']]=max(t[k].get(j['impl'],0),j['tflops'])
for l in open(out+'/sdpa.jsonl'):
    j=json.loads(l)
    if j['impl']=='torch-cudnn': cud[(j['dtype'],j['hd'],j['causal'],j['L'])]=j['tflops']
g=collections.defaultdict(lambda: collections.defaultdict(list))
for k in sorted(t):
    c=cud.get(k,float('nan')); b=t[k].get('base2',float('nan')); f=t[k].get('fb',float('nan'))
    print(k, 'base2 %.0f new %.0f cudnn %.0f | new/base2 %.3f | base2/cudnn %.3f new/cudnn %.3f'%(b,f,c,f/b,b/c,f/c))
    for v in ('base2','fb'): g[k[1]][v].append(math.log(t[k][v]/c))
for hd in sorted(g): print('hd',hd,'geomean vs cudnn', ' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
PY
