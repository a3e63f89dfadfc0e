#!/usr/bin/env bash
# For the next session (issue 12, the general variant within 10 % of plain): the general kernel's persistent form.
# Run 82 found general-causal (no modifier) at 0.93 of the causal kernel, which runs its persistent form at L 4096
# (32 query blocks per head at hd 128); the general kernel had none. The prepared patch
# docs/perf-runs/2026-12-04-session17-persistent-general.patch exports flash_fwd_sm90_{fp16,bf16}_hd{64,128}_general
# _persistent (HasPersistentForm takes kGeneral; cfg[4] of the general kernels becomes 32 / 16, so the Java launcher
# and flash_check pick the persistent form for short work per head by themselves) and extends
# FlashAttentionGpuTest.hopperPersistentKernelsWalkSeveralBlocksPerCta to general calls. The general consumers' state
# that the per-tile kernel sets once per CTA is per work tile in a persistent one: the MaskRule in shared memory
# (s_rule) and the ALiBi key tile (its slope is the head's); the patch has both consumers meet (named barrier 5) at
# each work tile before the rule is rewritten, and again after (the key tile is written after that, as before).
# Compiled (ptxas numbers in kernel-notes' "Next (after session 17)"), not run: session 17's device time was spent.
# Before the call: git apply the patch; tests/gpu/devcarry.sh --no-fc -o (bundle of the patched tree, its ops jar
# holding the new fatbins); extract the base fatbins from the previous bundle (HEAD without the patch) into
# .devcarry/base.txz (tar cJf of flash_fwd_sm90.fatbin). Then this script: flash_check --check over the candidate
# (its general cases are short: they run the persistent form; --ctas 4 walks each CTA through several of them),
# bench-general burst base / cand twice, sustained hd 128, and the Java GPU suite of the bundle (the patched tree).
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,cand}/flash_fwd_sm90.fatbin
for a in "" "--ctas 4"; do
  timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand $a > /tmp/check.txt 2>&1
  echo "check cand $a rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
done
bench_general burst $OUT/general.jsonl base cand; bench_general burst $OUT/general.jsonl cand base
bench_general sustained $OUT/general.jsonl base cand
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"; grep -E "tests (successful|failed|aborted|found)" /tmp/suite.log | tr -s ' ' | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30
