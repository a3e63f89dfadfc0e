#!/usr/bin/env bash
# Run 76 (session 16): softcap tiers v2 against run 75's tree. base = the bundle's fatbins (tests/gpu/devcarry.sh -o
# at 5ddb663: run 75's candidate, md5 7bd18af6 / b8352829); v2 = base with flash_fwd_sm90.fatbin and
# paged_prefill_sm90.fatbin rebuilt from the candidate (the pom's nvcc line), carried as .devcarry/v2.txz with its
# flash_check (fc.xz: bench-general gains a softcap 4.5 case whose |u| sit mostly in (0.25, 0.45]). The candidate:
# the degree-7 tier folded as the degree-5 one (q.k Q(q.k^2): five FMA-pipe ops instead of seven; CapPoly::Folded), the
# three tier votes one __reduce_max_sync. flash_check --check --kernels sm90 over v2; bench-general burst base / v2 /
# base / v2, sustained hd 128 base / v2; the Java GPU suite over the bundle with v2's fatbins in its ops jar.
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/base /tmp/v2 && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/v2.txz -C /tmp/v2 && xz -dc /tmp/v2/fc.xz > /tmp/fc && chmod +x /tmp/fc && rm /tmp/v2/fc.xz
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/base > /dev/null
for f in /tmp/base/*; do [ -e /tmp/v2/$(basename $f) ] || cp $f /tmp/v2/; done
md5sum /tmp/{base,v2}/flash_fwd_sm90.fatbin /tmp/{base,v2}/paged_prefill_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/gpu.txt
timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/v2 > /tmp/check.txt 2>&1; echo "check v2 rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench() {  # mode, variants
  local mode=$1; shift
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7 --hd 128"
  for v in "$@"; do
    timeout 60 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
}
bench burst base v2 base v2
echo "burst done at ${SECONDS}s"
bench sustained base v2
echo "sustained done at ${SECONDS}s"
# the Java GPU suite over v2's fatbins (the ops jar rewritten with them)
python3 - /tmp/b/lib /tmp/v2 <<'PY'
import os,sys,zipfile,shutil
lib,fbdir=sys.argv[1],sys.argv[2]
j=[x for x in sorted(os.listdir(lib)) if x.startswith('flashdjl-ops-') and x.endswith('.jar') and not x.endswith(('-tests.jar','-sources.jar','-javadoc.jar'))][0]
src=os.path.join(lib,j); tmp=src+'.new'; n=0
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp,'w',zipfile.ZIP_DEFLATED) as zo:
    for it in zi.infolist():
        name=os.path.basename(it.filename)
        if name in ('flash_fwd_sm90.fatbin','paged_prefill_sm90.fatbin'):
            data=open(os.path.join(fbdir,name),'rb').read(); n+=1
        else:
            data=zi.read(it.filename)
        zo.writestr(it,data)
shutil.move(tmp,src); print('jar rewritten:',j,n,'fatbins')
PY
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 150 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite v2 rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
  for hd in (64,128,256):
    if (mode,hd,'plain','v2') not in t: continue
    base={v:max(t[(mode,hd,'plain',v)]) for v in ('base','v2')}; cb={v:max(t[(mode,hd,'causal',v)]) for v in ('base','v2')}
    for case in sorted({k[2] for k in t if k[0]==mode and k[1]==hd}):
      ref = cb if 'causal' in case else base
      print(mode, hd, case.ljust(34), ' '.join('%s %s'%(v,'/'.join('%.0f (%.2f)'%(x,x/ref[v]) for x in t[(mode,hd,case,v)])) for v in ('base','v2') if (mode,hd,case,v) in t))
PY
