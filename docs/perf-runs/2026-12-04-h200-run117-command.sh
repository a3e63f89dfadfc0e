#!/usr/bin/env bash
# Run 117 (session 22): where the shuffled page order's cost comes from, and an L2 prefetch of the tile after the
# ring. decode_bench (HEAD 8dadb0c's kernel, the bench with --page-order): pages shuffled / in order / shuffled within
# runs of 64 pool pages (2 MiB of a pool) / of 8 pages (256 KiB), two interleaved passes; then pf (each warp asks L2
# for the K / V rows of the tile after its ring, one cp.async.bulk.prefetch.L2 a row, evict_first) against base.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/dv && tar xJf $T/dv41.txz -C /tmp/dv
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
decode_checks /tmp/dv/db_pf
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 2:32768:4096 --shape 64:4096:4096"
for pass in 1 2; do
  for o in shuffled inorder block:64 block:8; do
    timeout 60 /tmp/dv/db_base --reps 30 --tag "order-$o" --page-order $o $SH >> $OUT/order.jsonl 2>> $OUT/decode.err
  done
done
python3 tests/gpu/perf_summary.py decode $OUT/order.jsonl
decode_passes 2 "$SH" /tmp/dv/db_base /tmp/dv/db_pf
for v in base pf; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-inorder --page-order inorder --shape 1:65536:4096 --shape 8:16384:8192 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
for v in base pf; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v-narrow --kernel narrow --shape 8:16384:4096 --shape 128:2048:2048 >> $OUT/decode.jsonl 2>> $OUT/decode.err; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 90 $CS --tool memcheck --print-limit 20 /tmp/dv/db_pf --reps 0 --small --kernel wide > /tmp/san.txt 2>&1
echo "memcheck pf rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep -c '"ok":true' /tmp/san.txt) ok" | tee $OUT/sanitizer.txt
