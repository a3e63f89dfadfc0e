#!/usr/bin/env bash
# For the next session (issue 12, softcap within 10 % of plain): where the softcap tiers' time goes. ncu
# (SpeedOfLight, ComputeWorkloadAnalysis, WarpStateStats, SchedulerStats, InstructionStats) on one launch each of
# the hd 128 kernels in flash_check --bench-general --hd 128 (fp16 L 4096): plain, general-softcap30 (the degree-5
# tier, run 75) and general-softcap4.5 (the degree-7 tier), then the FMA / ALU / XU / gmma pipe utilisation of
# softcap30 and plain. Prepared in session 16 and not run (its device time was spent).
# .devcarry: tests/gpu/devcarry.sh (bundle.txz, fc.xz: flash_check with the softcap 4.5 case). Run from the
# repository root. Launch indices count the general kernel's launches over the cases in flash_check's order
# (3 warm-ups + 20 timed per case: general 0-22, softcap30 23-45, ..., softcap4.5 184-206); check the case printed
# before each "==PROF== Profiling" line.
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
md5sum /tmp/fb/flash_fwd_sm90.fatbin
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1); echo "NCU=$NCU"
A="--bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/fb"
S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats"
run() { timeout 60 $NCU $S -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > $OUT/ncu-$3.txt 2>&1; echo "$3 rc=$? at ${SECONDS}s"; }
run 'hd128_plain$' 5 plain
run 'hd128_general$' 28 softcap30
run 'hd128_general$' 190 softcap4.5
# pipe utilisation (a metric name this ncu lacks fails only these calls)
M=sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed.avg.per_cycle_active
met() { timeout 40 $NCU --metrics $M -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > $OUT/ncu-pipes-$3.txt 2>&1; echo "pipes $3 rc=$? at ${SECONDS}s"; grep -E "sm__" $OUT/ncu-pipes-$3.txt; }
met 'hd128_general$' 28 softcap30
met 'hd128_plain$' 5 plain
for f in $OUT/ncu-plain.txt $OUT/ncu-softcap*.txt; do echo "=== $f"; grep -B1 "==PROF== Profiling" $f | grep -o '"case":"[^"]*"'
  grep -E "^  flash_fwd|Duration|Issue Slots Busy|Executed Ipc Active|SM Busy|Compute \(SM\) Throughput|No Eligible|Warp Cycles Per Issued|Issued Warp Per Scheduler" $f | head -14; done
