#!/usr/bin/env bash
# Run 65 (session 14): the final tree (softcap with two polynomial tiers = run 64's v2t; its sm90 fatbin must have
# run 64's v2t md5 a96a63cd...) checked: flash_check --check --kernels all, memcheck on the sm90 kernels,
# the Java GPU suite with DJL's JNI; bench-general against eb00987 (base): burst once, sustained (hd 128) for the tree and the candidate.
# Candidate valibi: the tree with ALiBi's tensor-core key term on every tile of a causal call (the tiles across the
# diagonal included: every visible key is <= its row's position), checked by flash_check and by the Java GPU suite
# (the bundle's ops jar with valibi's fatbin in place of the tree's), timed in the same bench-general passes.
# .devcarry: bundle.txz + fc.xz + libdjl_torch.so.xz (tests/gpu/devcarry.sh -o of this tree), base.txz (run 63's),
# valibi.txz (flash_fwd_sm90.fatbin: nvcc line of run 63's base over the tree + the alibi_left change).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/new /tmp/base /tmp/valibi && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
cp /tmp/new/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
cp /tmp/new/* /tmp/valibi/ && tar xJf $T/valibi.txz -C /tmp/valibi
md5sum /tmp/{new,base,valibi}/flash_fwd_sm90.fatbin /tmp/new/paged_prefill_sm90.fatbin
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/new > /tmp/check.txt 2>&1; echo "check rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
timeout 80 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/new --max-work 600000 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt) at ${SECONDS}s"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
timeout 30 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/valibi > /tmp/chkv.txt 2>&1; echo "check valibi rc=$? $(tail -1 /tmp/chkv.txt)"; grep -m5 FAIL /tmp/chkv.txt
xz -9 -c /tmp/chkv.txt > $OUT/check-valibi.txt.xz
bench() {  # mode, variants
  local mode=$1; shift
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7 --hd 128"
  for v in "$@"; do
    timeout 60 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
}
bench burst base new valibi
echo "burst done at ${SECONDS}s"
python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
  for hd in (128,256):
    if (mode,hd,'plain','new') not in t: continue
    base={v:max(t[(mode,hd,'plain',v)]) for v in ('base','new','valibi')}; cb={v:max(t[(mode,hd,'causal',v)]) for v in ('base','new','valibi')}
    for case in sorted({k[2] for k in t if k[0]==mode and k[1]==hd}):
      ref = cb if 'causal' in case else base
      print(mode, hd, case.ljust(34), ' '.join('%s %s'%(v,'/'.join('%.0f (%.2f)'%(x,x/ref[v]) for x in t[(mode,hd,case,v)])) for v in ('base','new','valibi') if (mode,hd,case,v) in t))
PY
# the Java GPU suite over valibi's fatbin (the ops jar rewritten with it)
python3 - /tmp/b/lib /tmp/valibi/flash_fwd_sm90.fatbin <<'PY'
import os,sys,zipfile,shutil
lib,fb=sys.argv[1],sys.argv[2]
j=[x for x in sorted(os.listdir(lib)) if x.startswith('flashdjl-ops-') and x.endswith('.jar') and not x.endswith(('-tests.jar','-sources.jar','-javadoc.jar'))][0]
src=os.path.join(lib,j); tmp=src+'.new'
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp,'w',zipfile.ZIP_DEFLATED) as zo:
    for it in zi.infolist():
        data=open(fb,'rb').read() if it.filename.endswith('/flash_fwd_sm90.fatbin') else zi.read(it.filename)
        zo.writestr(it,data)
shutil.move(tmp,src); print('jar rewritten:',j)
PY
[ $SECONDS -lt 250 ] && { FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite2 timeout 110 /tmp/b/run-gpu.sh --tests-only > /tmp/suite2.log 2>&1; echo "suite valibi rc=$? at ${SECONDS}s"; }
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite2.log | tr -s ' ' > $OUT/suite-valibi-summary.txt; cat $OUT/suite-valibi-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite2.log | head -30
[ $SECONDS -lt 270 ] && bench sustained new valibi
[ $SECONDS -lt 330 ] && python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j['mode']=='sustained': t[(j['case'],j['impl'])].append(j['tflops'])
for case in sorted({k[0] for k in t}):
    ref='causal' if 'causal' in case else 'plain'
    print('sustained 128', case.ljust(34), ' '.join('%s %.0f (%.2f)'%(v,max(t[(case,v)]),max(t[(case,v)])/max(t[(ref,v)])) for v in ('new','valibi') if (case,v) in t))
PY
echo "end at ${SECONDS}s"
