#!/usr/bin/env bash
# Run 73 (session 16): the Java paged steps with their page table in 256-byte aligned sections (PagedStepBuffers,
# run 72): Java GPU suite and run-gpu.sh --paged --bench-only over this tree's bundle (tests/gpu/devcarry.sh --no-fc
# -o); and a split-merge variant of the decode kernel: arrival counted as the main loop ends (the atomic's round trip
# under the warps' merge), the last arrival merges without fencing its own partial, after a wait for the others'
# publications, the LSEs read once with the first partial o rows in flight. decode_bench (its header's build line)
# of old = this tree's paged_decode.cu, new = the variant (built on the workstation, carried as .devcarry/dbv7.txz), interleaved, each
# checked against the CPU reference before and after its timed launches; compute-sanitizer memcheck on the variant.
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/gpu.txt
mkdir -p /tmp/dbv && tar xJf $T/dbv7.txz -C /tmp/dbv; md5sum /tmp/dbv/db_*
timeout 60 compute-sanitizer --tool memcheck /tmp/dbv/db_new --small --reps 0 > /tmp/mc.txt 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) at ${SECONDS}s"; grep '^{' /tmp/mc.txt | head -3
timeout 60 compute-sanitizer --tool racecheck /tmp/dbv/db_new --small --reps 0 > /tmp/rc.txt 2>&1; echo "racecheck rc=$? $(grep 'ERROR SUMMARY\|RACECHECK SUMMARY' /tmp/rc.txt | head -1) at ${SECONDS}s"
dec() { for v in old new; do timeout 60 /tmp/dbv/db_$v --tag $v --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl; done; echo "decode pass at ${SECONDS}s"; }
dec
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
dec
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/pb timeout 200 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/pb.log 2>&1; echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/pb/bench-paged*.jsonl $OUT/ 2>/dev/null; grep "run-gpu\]   " /tmp/pb.log | tail -6
dec
python3 - $OUT <<'PY'
import json,sys,collections
o=sys.argv[1]
d=collections.defaultdict(list)
for l in open(o+'/decode.jsonl'):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'],'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode', k, ' | '.join(d[k]))
for f in ('bench-paged.jsonl','bench-paged-peers.jsonl'):
  try:
    for l in open(o+'/'+f):
      j=json.loads(l)
      if 'pct_copy' in j and j.get('hd',128)==128: print(f.split('.')[0], j.get('impl'), j.get('dtype'), j.get('batch'), j.get('L'), j.get('page'), j.get('splits',''), j['pct_copy'])
  except FileNotFoundError: pass
PY
