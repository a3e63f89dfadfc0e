#!/usr/bin/env bash
# Run 86 (session 18): softcap's range pass and row max in one packed pass. On a softcap tile without a hidden key the
# sm90 walk rounds each row's score pairs to bfloat16x2 (cvt.rn.bf16x2.f32) and takes their max and min
# (max / min.bf16x2): 1.5 ops a score instead of two FMNMX (|s| for the range test, s for the row max); the range
# bound carries a factor 1 + 2^-8 for the rounding, the row max (softmax reference) may be off by it. base = HEAD
# 8a1ea88's flash_fwd_sm90.fatbin (md5 9d2f2467, .devcarry/base.txz); cand = the bundle's (this tree). flash_check
# --check over cand, bench-general burst (hd 128 + 256) base / cand twice interleaved, sustained hd 128, the Java GPU
# suite over the bundle.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,cand}/flash_fwd_sm90.fatbin /tmp/cand/paged_prefill_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand > /tmp/check.txt 2>&1
echo "check cand rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
grep -i "softcap" /tmp/check.txt | head -3
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench_general burst $OUT/general.jsonl base cand; echo "burst 1 at ${SECONDS}s"
bench_general burst $OUT/general.jsonl cand base; echo "burst 2 at ${SECONDS}s"
bench_general sustained $OUT/general.jsonl base cand; echo "sustained at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 170 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; tr '\n' ' ' < $OUT/suite-summary.txt; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
