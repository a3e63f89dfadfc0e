#!/usr/bin/env bash
# For the next session (issue 12, hd 128 non-causal long rows): where our per-tile hd 128 kernel's cycles go against
# cuDNN's at the same base clock (run 56: cuDNN 3 % ahead per cycle at fp16 16k, issue slots 43 vs 38 %, tensor pipe
# 75 vs 73 %). Stall reasons per SASS line of ours (ncu --page source), the warp-state breakdown of both, and the
# persistent form run on the same shape (--persistent-blocks 100000) to see what it loses on long rows.
# .devcarry: tests/gpu/devcarry.sh (bundle.txz, fc.xz). Run from the repository root.
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
A="--bench --kernels sm90 --fatbin-dir /tmp/fb --hd 128 --L 16384 --causal 0 --dtype fp16 --reps 3"
for form in "plain|" "plain_persistent|--persistent-blocks 100000"; do name=${form%%|*}; extra=${form#*|}
  timeout 150 ncu --set full --import-source no --page raw --kernel-name regex:"flash_fwd_sm90_fp16_hd128_${name}\$" \
    --launch-skip 3 --launch-count 1 /tmp/fc $A $extra > $OUT/ncu-ours-$name-raw.txt 2>&1; echo "ncu raw $name rc=$?"
  grep -E "warp_latency_issue_stalled|smsp__pcsamp_warps_issue_stalled" $OUT/ncu-ours-$name-raw.txt | sort -k3 -n -r | head -12
  timeout 150 ncu --set full --import-source no --page source --print-source sass --kernel-name regex:"flash_fwd_sm90_fp16_hd128_${name}\$" \
    --launch-skip 3 --launch-count 1 /tmp/fc $A $extra > $OUT/ncu-ours-$name-sass.txt 2>&1; echo "ncu sass $name rc=$?"
done
grep -E "gpu__time_duration.sum|sm__inst_executed.avg.per_cycle_active " $OUT/ncu-ours-*-raw.txt
