#!/usr/bin/env bash
# Run 106 (session 20): on the tree of run 105 (final): skip = the merging CTA's warps with no item skip the merge
# loop (at G = 4 with 8 warps half the CTA re-read head 0's partials); ipar = the CTA merge of each item split over two
# adjacent lanes (4 of the 8 warps' states each, one shuffle to combine); both. decode_bench, three passes; the small
# check on every variant.
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv25.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for v in final skip ipar both; do for k in wide narrow compact; do echo "$v small $k: $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok, $(timeout 60 /tmp/dv/db_$v --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":false') bad"; done; done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 8:16384:4096 --shape 4:32768:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2 3; do
  for v in final skip ipar both; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
