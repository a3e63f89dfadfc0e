#!/usr/bin/env bash
# Run 81 (session 17): the sm90 ring's slot / phase in unsigned arithmetic. Candidate ring: ring_slot<S>(i) /
# ring_phase<S>(i) (unsigned i % S, (i / S) & 1) for every signed i % S, (i / S) & 1 of the body (producer loads,
# consumer waits, releases): run 79 counted ~58 instructions of ring arithmetic and waits per key tile in the consumer
# loop, which bounds the softcap walk. base = this tree (run 80's diag fatbins: flash_fwd_sm90 9d2f2467,
# paged_prefill_sm90 959bd0dd), ring = base + the change, both carried (.devcarry/diag.txz, ring.txz) over the
# bundle of the tree before run 80. docs/perf-runs was moved out of the working tree for this call (carry limit), so
# this script ran from .devcarry/run81.sh.
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/base /tmp/diag /tmp/ring /tmp/old && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/old > /dev/null
cp /tmp/old/* /tmp/base/ && tar xJf $T/diag.txz -C /tmp/base
cp /tmp/old/* /tmp/ring/ && tar xJf $T/ring.txz -C /tmp/ring
md5sum /tmp/{base,ring}/flash_fwd_sm90.fatbin /tmp/{base,ring}/paged_prefill_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/gpu.txt
bench() {  # mode, variants
  local mode=$1; shift
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7 --hd 128"
  for v in "$@"; do
    timeout 90 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
}
bench burst base ring; echo "burst 1 at ${SECONDS}s"
timeout 90 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/ring > /tmp/check.txt 2>&1; echo "check ring rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench sustained base ring; echo "sustained at ${SECONDS}s"
bench burst ring base; echo "burst 2 at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base ring
python3 - /tmp/b/lib /tmp/ring <<'PY'
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
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite ring rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
