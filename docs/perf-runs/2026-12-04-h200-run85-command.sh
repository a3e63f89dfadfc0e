#!/usr/bin/env bash
# Run 85 (session 18): where the general kernel's causal mode loses against the causal kernel (general-causal without
# a modifier 0.93 of causal at hd 128, L 4096; runs 83-84: not its grid). HEAD 8a1ea88's flash_fwd_sm90.fatbin only
# (md5 9d2f2467; .devcarry/base.txz) and flash_check. (1) SASS of the fp16 hd 128 per-tile general and causal kernels
# (spill instructions: LDL / STL); (2) bench-general --hd 128 burst with the persistent forms allowed and forbidden
# (--persistent-blocks 0), twice; (3) ncu source counters and instruction totals of one general-causal and one
# causal launch, both per-tile (--persistent-blocks 0), for tests/gpu/ncu_source_summary.py.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/tree /tmp/sass && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/base.txz -C /tmp/tree
md5sum /tmp/tree/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
for k in general causal; do
  cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_$k /tmp/tree/flash_fwd_sm90.fatbin > /tmp/sass/$k.txt
  echo "sass $k: $(grep -c '^ */\*[0-9a-f]*\*/' /tmp/sass/$k.txt) instructions, LDL $(grep -c 'LDL' /tmp/sass/$k.txt), STL $(grep -c 'STL' /tmp/sass/$k.txt)"
done
tar cf - -C /tmp/sass . | xz -6 > $OUT/sass.txz
for pass in 1 2; do
  BENCH_ARGS="--hd 128" bench_general burst $OUT/persistent.jsonl tree
  BENCH_ARGS="--hd 128 --persistent-blocks 0" bench_general burst $OUT/per-tile.jsonl tree
done
echo "bench at ${SECONDS}s"
echo "persistent forms allowed:"; python3 tests/gpu/perf_summary.py general $OUT/persistent.jsonl tree
echo "persistent forms off:"; python3 tests/gpu/perf_summary.py general $OUT/per-tile.jsonl tree
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
A="--bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/tree --persistent-blocks 0"
# 28 launches a case (3 warm-up + 20 timed + ...); general-kernel cases in order: general, softcap30, alibi,
# general-causal (the 4th): skip 3 * 28 + 3; the causal kernel runs the causal case only: skip 3
for t in "hd128_general\$ 87 general-causal" "hd128_causal\$ 3 causal"; do set -- $t
  timeout 120 $NCU --clock-control none --section SourceCounters --page source --print-source sass --csv -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > /tmp/src-$3.csv 2> /tmp/src-$3.err
  echo "src $3 rc=$? lines=$(wc -l < /tmp/src-$3.csv) at ${SECONDS}s"; grep -m1 PROF /tmp/src-$3.csv; tail -2 /tmp/src-$3.err
  xz -6 -c /tmp/src-$3.csv > $OUT/src-$3.csv.xz
  timeout 60 $NCU --clock-control none --metrics sm__inst_executed.sum,sm__cycles_active.avg,gpu__time_duration.sum,sm__inst_executed_pipe_alu.sum,sm__inst_executed_pipe_fma.sum,sm__inst_executed_pipe_uniform.sum,sm__inst_executed_pipe_xu.sum -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > $OUT/ncu-$3.txt 2>&1
  echo "ncu $3 rc=$?"; grep -E "flash_fwd_sm90_fp16|sm__|gpu__" $OUT/ncu-$3.txt | grep -v '^{'
done
echo "end at ${SECONDS}s"
