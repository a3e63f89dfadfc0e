#!/usr/bin/env bash
# Prepared in sessions 26 / 27, which got no GPU: not run yet; after run 128 decided CAND (new | tier, see its header).
# Run 129: the Java GPU suite over the bundle of the tree with docs/perf-runs/2026-12-05-session26-softcap-kernels.patch
# applied (.devcarry/bundle.txz: tests/gpu/devcarry.sh in that tree, run by the packs script below), with CAND=tier
# its flash_fwd_sm90.fatbin swapped for the tier build's (FlashDispatch routes softcap with the causal mask or alone,
# nothing else, to the causal_softcap / softcap kernels at hd 64 / 128; GPU cases softcapOnly, the sweep's
# softcap / causal+softcap options incl. softcap 50 in half (the tier reference), a varlen causal softcap case), then
# compute-sanitizer memcheck and racecheck over flash_check --check's small cases with 4 CTAs a launch, over the
# candidate's fatbins.
# Packs: .devcarry/bundle.txz, libdjl_torch.so.xz and fa52s.txz (flash_check + the tier build's flash_fwd_sm90.fatbin;
# its paged_prefill_sm90.fatbin is the product's, 9ba0e04d, already in the bundle) come from
# `bash docs/perf-runs/2026-12-05-run128-129-packs.sh`, with run 128's pack.
# carry [".devcarry/bundle.txz", ".devcarry/libdjl_torch.so.xz", ".devcarry/fa52s.txz"] (53.8 + 0.55 + 4.4 MB); for the
# 64 MiB carry limit docs/ and model-zoo-examples/src/test/resources are moved out of the tree for the call (the call
# needs only tests/gpu/perf_run_lib.sh from it; the tree is then ~4 MB) and this script copied to the root:
#   CAND=tier bash run129.sh
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
CAND=${CAND:-tier}
mkdir -p /tmp/b /tmp/fa && tar xJf "$T/bundle.txz" -C /tmp/b && xz -dc "$T/libdjl_torch.so.xz" > /tmp/libdjl_torch.so &&
  tar xJf "$T/fa52s.txz" -C /tmp/fa && cp /tmp/fa/flash_check /tmp/fc
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
if [ "$CAND" = tier ]; then swap_ops_fatbins /tmp/b/lib /tmp/fa/tier flash_fwd_sm90.fatbin; fi
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null && md5sum /tmp/fb/*
gpu_suite /tmp/b /tmp/libdjl_torch.so
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 90 $CS --tool memcheck --print-limit 10 /tmp/fc --check --kernels sm90 --max-work 2000000 --ctas 4 \
  --fatbin-dir /tmp/fb > /tmp/san.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee "$OUT/sanitizer.txt"
timeout 150 $CS --tool racecheck --racecheck-report analysis --print-limit 10 /tmp/fc --check --kernels sm90 \
  --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fb > /tmp/race.txt 2>&1
echo "racecheck rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/race.txt) $(grep 'passed' /tmp/race.txt | tail -1)" |
  tee -a "$OUT/sanitizer.txt"
echo "all done at ${SECONDS}s"
