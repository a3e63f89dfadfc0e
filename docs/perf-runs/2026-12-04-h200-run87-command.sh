#!/usr/bin/env bash
# Run 87 (session 18): run 86's packed range pass moved into flash_common.cuh (packed_row_range /
# packed_range_bound, so that flash_emu_test runs the kernel's own code on the CPU) compiled to different SASS (hd 128
# general .text 512 B shorter): timed against the measured inline form. Variants (flash_fwd_sm90.fatbin only):
# old = 8a1ea88 (before the packed pass, md5 9d2f2467), inline = 686ff61 (run 86's cand, 17929a55), helper = this
# tree (a0e8c0b4). flash_check --check over helper; bench-general --hd 128 burst, three interleaved passes.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
export BENCH_ARGS="--hd 128"
mkdir -p /tmp/old && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/base.txz -C /tmp/old && tar xJf $T/c87.txz -C /tmp
md5sum /tmp/{old,inline,helper}/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/helper > /tmp/check.txt 2>&1
echo "check helper rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench_general burst $OUT/general.jsonl old inline helper
bench_general burst $OUT/general.jsonl helper inline old
bench_general burst $OUT/general.jsonl inline helper old; echo "burst at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl old inline helper
