#!/usr/bin/env bash
# Run 84 (session 18): the persistent general kernel without the consumers' meeting at each work tile. Variants
# (flash_fwd_sm90.fatbin; the rest of each folder = the bundle's):
#   base  = HEAD 8a1ea88 (per-tile general kernels only; md5 9d2f2467)
#   p83   = run 83's candidate (the session-17 patch: both consumers meet at named barrier 5 twice per work tile)
#   cand2 = the patch with each consumer's own MaskRule and ALiBi key tile per Q buffer (s_rule_pc, 4 key tiles):
#           no cross-consumer barrier; ptxas hd 128 persistent 84 / 156 B spills (the rule's [cw][qb] index)
#   probe = timing probe only (fp16 hd 128 kernels): the rule per Q buffer shared by both consumers ([0][qb]: 40 / 64
#           B), racy in principle when a consumer runs two work tiles ahead; measures what the spills of cand2 cost
# flash_check --check over cand2 (and --ctas 4), bench-general --hd 128 burst x2 interleaved, sustained, Java suite
# over the bundle with cand2's fatbin.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
export BENCH_ARGS="--hd 128"
mkdir -p /tmp/b /tmp/p83 /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/p83 > /dev/null
tar xJf $T/c84.txz -C /tmp
for v in base cand2 probe; do mkdir -p /tmp/$v; cp -n /tmp/p83/* /tmp/$v/; done
tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,p83,cand2,probe}/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
i=0
for a in "" "--ctas 4"; do
  i=$((i+1))
  timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand2 $a > /tmp/check$i.txt 2>&1
  echo "check cand2 $a rc=$? $(tail -1 /tmp/check$i.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check$i.txt
  xz -9 -c /tmp/check$i.txt > $OUT/check$i.txt.xz
done
bench_general burst $OUT/general.jsonl base p83 cand2 probe; echo "burst 1 at ${SECONDS}s"
bench_general burst $OUT/general.jsonl probe cand2 p83 base; echo "burst 2 at ${SECONDS}s"
bench_general sustained $OUT/general.jsonl base p83 cand2 probe; echo "sustained at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base p83 cand2 probe
swap_ops_fatbins /tmp/b/lib /tmp/cand2 flash_fwd_sm90.fatbin
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; tr '\n' ' ' < $OUT/suite-summary.txt; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
