R=$PWD; mkdir -p /tmp/w && cd /tmp/w && tar xzf $R/.devcarry/ck.tgz && cd ck
which ncu nsys cuobjdump nvdisasm; ls -d /usr/local/cuda*/bin 2>/dev/null; ls /usr/local/cuda/bin 2>/dev/null | tr '\n' ' '
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "NCU=$NCU"
[ -z "$NCU" ] && exit 0
S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats"
run() { $NCU $S -k regex:$1 --launch-skip $2 --launch-count 1 ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir new > $OUT/ncu_$3.txt 2>&1; echo "$3 rc=$?"; }
run hd128_plain 5 plain
run hd128_general 5 general
run hd128_general 28 softcap
run hd128_general 51 alibi
for f in $OUT/ncu_*.txt; do echo "=== $f"; grep -E "Duration|SM Busy|Issue Slots Busy|Executed Ipc A|Stall|Warp Cycles Per Issued|No Eligible|Eligible Warps|One or More" $f | head -20; done
