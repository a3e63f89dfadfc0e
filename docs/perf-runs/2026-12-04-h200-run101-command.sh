#!/usr/bin/env bash
# Run 101 (session 20): the _compact decode kernels (hd 128 / 256 for GPUs of 99 KB shared memory a CTA) in the Java
# GPU suite (PagedDecodeGpuTest under optSharedMemoryLimit(101376)) and timed by decode_bench --kernel compact;
# decode_bench variants of the tree: units of 2 / 8 tiles in the _wide(_pair) kernels, L2::256B prefetch on the
# streaming copies; a trace build (per-warp %globaltimer + the merging CTA's stamps per row).
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/dv && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv20.txz -C /tmp/dv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 64:4096:4096 --shape 4:32768:8192"
for pass in 1 2; do
  for v in tree u2 u8 l256; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
timeout 60 /tmp/dv/db_tree --reps 30 --tag compact --kernel compact $SH --shape 16:8192:8192 >> $OUT/decode.jsonl 2>> $OUT/decode.err
timeout 60 /tmp/dv/db_tree --reps 30 --tag narrow --kernel narrow --shape 16:8192:8192 >> $OUT/decode.jsonl 2>> $OUT/decode.err
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
for pass in 1 2; do timeout 90 /tmp/dv/db_trace --tag trace$pass --reps 10 --shape 1:65536:4096 --shape 8:16384:4096 --shape 4:32768:8192 2>&1 | grep '^{' | grep -v sm_end_us >> $OUT/decode-trace.jsonl; done
cut -c1-700 $OUT/decode-trace.jsonl
echo "decode done at ${SECONDS}s"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 330 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > "$OUT/suite-summary.txt"
tr '\n' ' ' < "$OUT/suite-summary.txt"; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
echo "99 KB cases passed: $(grep -c '99 KB\].*✔\|✔.*99 KB' /tmp/suite.log)"
grep -m3 "99 KB" /tmp/suite.log
cp /tmp/suite.log $OUT/suite.log
