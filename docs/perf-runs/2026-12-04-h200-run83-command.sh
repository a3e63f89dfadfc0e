#!/usr/bin/env bash
# Run 83 (session 18): the general kernel's persistent form (docs/perf-runs/2026-12-04-session17-persistent-general.patch
# applied; the bundle is the patched tree). base = the bundle's fatbins with flash_fwd_sm90.fatbin from HEAD 8a1ea88
# (md5 9d2f2467, carried as .devcarry/base.txz); cand = the bundle's. flash_check --check over cand (and --ctas 4: each
# CTA walks several work tiles), bench-general burst base / cand twice interleaved, sustained hd 128, the Java GPU suite.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,cand}/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
i=0
for a in "" "--ctas 4"; do
  i=$((i+1))
  timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand $a > /tmp/check$i.txt 2>&1
  echo "check cand $a rc=$? $(tail -1 /tmp/check$i.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check$i.txt
  xz -9 -c /tmp/check$i.txt > $OUT/check$i.txt.xz
done
bench_general burst $OUT/general.jsonl base cand; echo "burst 1 at ${SECONDS}s"
bench_general burst $OUT/general.jsonl cand base; echo "burst 2 at ${SECONDS}s"
bench_general sustained $OUT/general.jsonl base cand; echo "sustained at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; tr '\n' ' ' < $OUT/suite-summary.txt; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
