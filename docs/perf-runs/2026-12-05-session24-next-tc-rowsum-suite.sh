#!/usr/bin/env bash
# Prepared in session 24 (no GPU that session): the second GPU call after run 125 (2026-12-05-session24-next-tc-rowsum.sh),
# for the candidate run 125 takes. The Java GPU suite over run 119's bundle (.devcarry/bundle.txz, session 22; the
# product's Java code has changed by one comment since) with the candidate's flash_fwd_sm90.fatbin and
# paged_prefill_sm90.fatbin swapped into the ops jar, then memcheck and racecheck over the candidate's kernels.
#   CAND=tc1fr bash docs/perf-runs/2026-12-05-session24-next-tc-rowsum-suite.sh (CAND: q1 | tc1f | tc1fr | tc2fr | qfr; session 25)
# carry: .devcarry/bundle.txz, .devcarry/fa49-$CAND.txz (flash_check and the candidate's two fatbins; fa49.txz is too
# big beside the bundle), .devcarry/libdjl_torch.so.xz. The carried paths and the tracked tree must stay under 64 MiB:
# move docs/perf-runs out of the tree for the call and back after it, as runs 119-124 did.
. tests/gpu/perf_run_lib.sh
CAND=${CAND:?set CAND to q1, tc1f, tc1fr, tc2fr or qfr}
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fa && tar xJf "$T/bundle.txz" -C /tmp/b && tar xJf "$T/fa49-$CAND.txz" -C /tmp/fa &&
  xz -dc "$T/libdjl_torch.so.xz" > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/$CAND/*
swap_ops_fatbins /tmp/b/lib /tmp/fa/$CAND flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
gpu_suite /tmp/b /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null && cp /tmp/fa/$CAND/* /tmp/fb/
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 70 $CS --tool memcheck --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 \
  --fatbin-dir /tmp/fb > /tmp/san.txt 2>&1
echo "memcheck $CAND rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee "$OUT/sanitizer.txt"
timeout 150 $CS --tool racecheck --racecheck-report analysis --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 \
  --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fb > /tmp/race.txt 2>&1
echo "racecheck $CAND rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/race.txt) $(grep 'passed' /tmp/race.txt | tail -1)" |
  tee -a "$OUT/sanitizer.txt"
