#!/usr/bin/env bash
# Run 64 (session 14): the tree's softcap with three polynomial tiers (new) against two tiers (v2t = run 63's new
# without its hd 64 change) and eb00987 (base); the tree checked (flash_check --check --kernels all, memcheck, Java
# GPU suite with DJL's JNI) and timed against cuDNN on every flash shape.
# .devcarry: bundle.txz + fc.xz + libdjl_torch.so.xz (tests/gpu/devcarry.sh -o of this tree), base.txz (run 63's),
# v2t.txz (flash_fwd_sm90.fatbin of the two-tier tree, same nvcc line as run 63's base).
T=$PWD/.devcarry; END=$((SECONDS + 545))
mkdir -p /tmp/b /tmp/new /tmp/base /tmp/v2t && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
for v in base v2t; do cp /tmp/new/* /tmp/$v/ && tar xJf $T/$v.txz -C /tmp/$v; done
md5sum /tmp/{new,base,v2t}/flash_fwd_sm90.fatbin /tmp/new/paged_prefill_sm90.fatbin
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/new > /tmp/check.txt 2>&1; echo "check new rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
timeout 30 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/v2t > /tmp/chk2.txt 2>&1; echo "check v2t rc=$? $(tail -1 /tmp/chk2.txt)"
timeout 80 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/new --max-work 600000 > /tmp/mc.txt 2>&1; echo "memcheck new rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt) at ${SECONDS}s"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
# softcap tiers: bench-general burst (hd 128 + 256) for base / v2t / new, then sustained hd 128 for v2t / new
for v in base v2t new; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"burst\"/" >> $OUT/general.jsonl
done
for v in v2t new; do
  [ $SECONDS -lt $END ] && timeout 40 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v --hd 128 --warm-ms 800 --seconds 0.7 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"sustained\"/" >> $OUT/general.jsonl
done
echo "general done at ${SECONDS}s"
# the tree against cuDNN, every shape, burst; then hd 128 sustained
[ $SECONDS -lt $END ] && timeout 70 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/new --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"new\",\"mode\":\"burst\"/" >> $OUT/flash.jsonl
[ $SECONDS -lt $END ] && timeout 90 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"burst\"/" >> $OUT/flash.jsonl
a="--warm-ms 800 --seconds 0.7 --hd 128"
[ $SECONDS -lt $END ] && timeout 45 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/new $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"new\",\"mode\":\"sustained\"/" >> $OUT/flash.jsonl
[ $SECONDS -lt $END ] && timeout 45 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"sustained\"/" >> $OUT/flash.jsonl
echo "flash done at ${SECONDS}s"
python3 - $OUT <<'PY'
import json,sys,collections,math,os
o=sys.argv[1]
t=collections.defaultdict(list)
for l in open(o+'/general.jsonl'):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'],j['impl'])].append(j['tflops'])
V=('base','v2t','new')
for mode in ('burst','sustained'):
  for hd in (128,256):
    vs=[v for v in V if (mode,hd,'plain',v) in t]
    if not vs: continue
    base={v:max(t[(mode,hd,'plain',v)]) for v in vs}; cb={v:max(t[(mode,hd,'causal',v)]) for v in vs}
    for case in sorted({k[2] for k in t if k[0]==mode and k[1]==hd}):
      ref = cb if 'causal' in case else base
      print(mode, hd, case.ljust(34), ' '.join('%s %.0f (%.2f)'%(v,max(t[(mode,hd,case,v)]),max(t[(mode,hd,case,v)])/ref[v]) for v in vs if (mode,hd,case,v) in t))
if os.path.exists(o+'/flash.jsonl'):
  t=collections.defaultdict(list)
  for l in open(o+'/flash.jsonl'):
    j=json.loads(l); t[(j['mode'],j['hd'],j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
  for mode in ('burst','sustained'):
    g=collections.defaultdict(list)
    for k in sorted({k[1:5] for k in t if k[0]==mode}):
        c=max(t.get((mode,)+k+('cudnn',),[float('nan')]))
        if (mode,)+k+('new',) not in t: continue
        x=max(t[(mode,)+k+('new',)])
        print(mode,k,'new %.0f cudnn %.0f (%.3f)'%(x,c,x/c)); g[k[0]].append(math.log(x/c))
    for hd in sorted(g): print(mode,'hd',hd,'geomean vs cudnn %.3f'%math.exp(sum(g[hd])/len(g[hd])))
PY
echo "end at ${SECONDS}s"
