#!/usr/bin/env bash
# Run 61 (session 13): where the hd 128 non-causal 16k kernel's cycles go, per SASS line (issue 12's weakest bar row;
# run 59 had the kernel-wide stall counts only). ncu --page source on one launch of the per-tile plain kernel of this
# tree's bundle (its hd 128 plain kernel is the product's), then the same for the causal 16k kernel.
# .devcarry: bundle.txz, fc.xz (tests/gpu/devcarry.sh).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
for c in 0 1; do name=plain; [ $c = 1 ] && name=causal
  A="--bench --kernels sm90 --fatbin-dir /tmp/fb --hd 128 --L 16384 --causal $c --dtype fp16 --reps 3"
  timeout 200 ncu --set full --import-source no --page source --print-source sass --kernel-name regex:"flash_fwd_sm90_fp16_hd128_${name}\$" \
    --launch-skip 3 --launch-count 1 /tmp/fc $A > /tmp/sass-$name.txt 2>&1; echo "ncu sass $name rc=$? $(wc -l < /tmp/sass-$name.txt) lines"
  xz -9 -c /tmp/sass-$name.txt > $OUT/ncu-$name-sass.txt.xz
  head -5 /tmp/sass-$name.txt
done
