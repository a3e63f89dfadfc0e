#!/usr/bin/env bash
# Run 120 (session 22): compute-sanitizer over the product's flash kernels (this tree's flash_fwd_sm90.fatbin, the one
# run 119's bundle carried: causal_alibi at hd 64 / 128, the shared key-term layout): run 119's memcheck had counted 4
# errors over a candidate that also held hd 256 causal_alibi / alibi kernels (not taken). memcheck and racecheck over
# flash_check --check on the small cases with 4 CTAs (persistent walks), the errors printed.
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf $T/fa44.txz -C /tmp/fa
md5sum /tmp/fa/prod/*
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 200 $CS --tool $tool --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 3000000 --ctas 4 --fatbin-dir /tmp/fa/prod > $OUT/$tool.txt 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/$tool.txt | tr '\n' ' ') $(tail -1 $OUT/$tool.txt)"
  grep -B2 -A8 "Invalid\|Error\|Hazard" $OUT/$tool.txt | grep -v "^PASS" | head -30
done
