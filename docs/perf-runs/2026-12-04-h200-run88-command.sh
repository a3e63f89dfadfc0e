#!/usr/bin/env bash
# Run 88 (session 18): the Java GPU suite over this tree's sm90 fatbins (the packed range pass as flash_common.cuh's
# packed_row_range: flash_fwd_sm90 a0e8c0b4 and paged_prefill_sm90 from this tree), swapped into run 86's bundle (same
# Java code: only the CUDA sources moved since).
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/c88.txz -C /tmp && xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
md5sum /tmp/helper/*.fatbin
swap_ops_fatbins /tmp/b/lib /tmp/helper flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 200 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; tr '\n' ' ' < $OUT/suite-summary.txt; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
