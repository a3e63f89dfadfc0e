#!/usr/bin/env bash
# Run 60 (session 13): the final tree (hd 64 plain / per-tile causal on FlashAttention-3's three-consumer tile;
# softcap's CapPoly, sticky per warp): Java GPU suite with DJL's JNI, flash_check --check (default grid, --ctas 3,
# --persistent-blocks 0), then benches against the product fatbin of main 97a8a6c (prod) and cuDNN in the same call,
# then memcheck / racecheck.
# .devcarry: bundle.txz (tests/gpu/devcarry.sh), fc.xz (flash_check of this tree), prod.txz (main 97a8a6c's
# flash_fwd_sm90.fatbin), libdjl_torch.so.xz (../shared/gpu/djl-pytorch-jni).
T=$PWD/.devcarry; END=$((SECONDS + 540))
mkdir -p /tmp/b /tmp/fb /tmp/prod && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
cp /tmp/fb/* /tmp/prod/ && tar xJf $T/prod.txz -C /tmp/prod
md5sum /tmp/fb/*sm90.fatbin /tmp/prod/flash_fwd_sm90.fatbin
for a in "" "--ctas 3" "--persistent-blocks 0"; do
  k=sm90; [ -z "$a" ] && k=all
  n=check$(echo "x$a" | tr -d ' -'); timeout 90 /tmp/fc --check --kernels $k --fatbin-dir /tmp/fb $a > /tmp/$n.txt 2>&1
  echo "check [$k $a] rc=$? $(tail -1 /tmp/$n.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/$n.txt
done
xz -9 -c /tmp/checkx.txt > $OUT/check.txt.xz
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
# hd 64: this tree (fb) vs prod, cuDNN; both pacings
for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in prod fb; do
    timeout 100 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/hd64.jsonl
  done
  timeout 100 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/hd64.jsonl
done
python3 - $OUT/hd64.jsonl <<'PY'
import json,sys,collections,math
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
    g=collections.defaultdict(list)
    for k in sorted({k[1:4] for k in t if k[0]==mode}):
        c=max(t.get((mode,)+k+('cudnn',),[float('nan')]))
        row={v:max(t[(mode,)+k+(v,)]) for v in ('prod','fb') if (mode,)+k+(v,) in t}
        print(mode,k,' '.join('%s %.0f (%.3f)'%(v,x,x/c) for v,x in row.items()),'cudnn %.0f'%c)
        for v,x in row.items(): g[v].append(math.log(x/c))
    print(mode,'geomean vs cudnn',' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g.items()))
PY
echo "hd64 bench done at ${SECONDS}s"
# general vs plain (softcap sticky), burst, prod and fb interleaved, twice
for r in 1 2; do for v in prod fb; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"burst\"/" >> $OUT/general.jsonl
done; done
python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['hd'],j['case'],j['impl'])].append(j['tflops'])
for hd in (128,256):
    base={v:max(t[(hd,'plain',v)]) for v in ('prod','fb')}; cb={v:max(t[(hd,'causal',v)]) for v in ('prod','fb')}
    for case in sorted({k[1] for k in t if k[0]==hd}):
        ref = cb if 'causal' in case else base
        print(hd, case.ljust(36), ' '.join('%s %.0f (%.2f)'%(v,max(t[(hd,case,v)]),max(t[(hd,case,v)])/ref[v]) for v in ('prod','fb')))
PY
echo "general bench done at ${SECONDS}s"
[ $SECONDS -lt $END ] && { timeout 90 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --hd 64 --fatbin-dir /tmp/fb --ctas 3 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"; }
[ $SECONDS -lt $END ] && { timeout 100 compute-sanitizer --tool racecheck --racecheck-report analysis /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb --ctas 2 --max-work 300000 > /tmp/rc.txt 2>&1; echo "racecheck rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1) $(tail -1 /tmp/rc.txt)"; }
echo "end at ${SECONDS}s"
