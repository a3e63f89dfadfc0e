#!/usr/bin/env bash
# Run 62 (session 13): the stale-max rule of the sm90 online softmax (O rescaled only when a row's max rises by more
# than 8 in log2 units): flash_check --check, Java GPU suite, then ours (new) against the run-60 tree's fatbins (base)
# and cuDNN in the same call, burst for every shape, sustained for hd 128.
# .devcarry: bundle.txz (tests/gpu/devcarry.sh of this tree), fc.xz, base.txz (run 60's flash_fwd_sm90 /
# paged_prefill_sm90 fatbins), libdjl_torch.so.xz.
T=$PWD/.devcarry; END=$((SECONDS + 330))
mkdir -p /tmp/b /tmp/new /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
cp /tmp/new/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/new/*sm90.fatbin /tmp/base/*sm90.fatbin
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/new > /tmp/check.txt 2>&1; echo "check rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
for v in base new; do
  [ $SECONDS -lt $END ] && timeout 80 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"burst\"/" >> $OUT/flash.jsonl
done
[ $SECONDS -lt $END ] && timeout 100 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"burst\"/" >> $OUT/flash.jsonl
echo "burst done at ${SECONDS}s"
a="--warm-ms 800 --seconds 0.7"
for v in base new; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --hd 128 $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"sustained\"/" >> $OUT/flash.jsonl
done
[ $SECONDS -lt $END ] && timeout 60 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 128 $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"sustained\"/" >> $OUT/flash.jsonl
echo "sustained done at ${SECONDS}s"
python3 - $OUT/flash.jsonl <<'PY'
import json,sys,collections,math
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['hd'],j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
    g=collections.defaultdict(lambda: collections.defaultdict(list))
    for k in sorted({k[1:5] for k in t if k[0]==mode}):
        c=max(t.get((mode,)+k+('cudnn',),[float('nan')]))
        row={v:max(t[(mode,)+k+(v,)]) for v in ('base','new') if (mode,)+k+(v,) in t}
        print(mode,k,' '.join('%s %.0f (%.3f)'%(v,x,x/c) for v,x in row.items()),'cudnn %.0f'%c)
        for v,x in row.items(): g[k[0]][v].append(math.log(x/c))
    for hd in sorted(g): print(mode,'hd',hd,'geomean vs cudnn',' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hd].items()))
PY
echo "end at ${SECONDS}s"
