#!/usr/bin/env bash
# Prepared in session 26, which got no GPU: not run yet; needs the tree with
# docs/perf-runs/2026-12-05-session26-softcap-kernels.patch applied and its bundle (tests/gpu/devcarry.sh -o).
# Run 129 (session 26): the Java GPU suite over this tree's bundle (FlashDispatch routes softcap with the causal mask
# or alone, nothing else, to the causal_softcap / softcap kernels at hd 64 / 128; new GPU cases: softcapOnly, the
# sweep's softcap / causal+softcap options, a varlen causal softcap case), then compute-sanitizer racecheck over
# flash_check --check's small cases with 4 CTAs a launch (memcheck ran in run 128).
# carry [".devcarry/bundle.txz", ".devcarry/libdjl_torch.so.xz", ".devcarry/fc.xz"] (tests/gpu/devcarry.sh -o); for the
# 64 MiB carry limit docs/perf-runs is moved out of the tree for the call and this script copied to the root.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf "$T/bundle.txz" -C /tmp/b && xz -dc "$T/libdjl_torch.so.xz" > /tmp/libdjl_torch.so &&
  xz -dc "$T/fc.xz" > /tmp/fc && chmod +x /tmp/fc
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
gpu_suite /tmp/b /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null && md5sum /tmp/fb/*
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 170 $CS --tool racecheck --racecheck-report analysis --print-limit 10 /tmp/fc --check --kernels sm90 \
  --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fb > /tmp/race.txt 2>&1
echo "racecheck rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/race.txt) $(grep 'passed' /tmp/race.txt | tail -1)" |
  tee "$OUT/sanitizer.txt"
echo "all done at ${SECONDS}s"
