#!/usr/bin/env bash
# Run 79 (session 17): where the hd 128 kernels' instructions go, per SASS instruction. Run 78's ncu counts put the
# softcap 30 launch at 13.1 warp instructions per score (ALU 3.8, FMA 6.0, XU 1.07, uniform 0.78, other 1.5) where
# the tiny tier's own work is ~8.5; runs 77-78 showed each instruction per score costs ~4 % there (the consumer's
# softmax is the critical chain). ncu SourceCounters (per-instruction executed counts, SASS) for the softcap 30
# launch of the general kernel (base = the bundle's fatbin) and for the plain kernel; stall reasons (warp-state
# ratios) for both. Raw CSVs xz'd; tests/gpu is not involved.
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
md5sum /tmp/fb/flash_fwd_sm90.fatbin
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1); $NCU --version | tail -1
A="--bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/fb"
src() {  # regex skip tag
  timeout 120 $NCU --clock-control none --section SourceCounters --page source --print-source sass --csv -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > /tmp/src-$3.csv 2> /tmp/src-$3.err
  echo "src $3 rc=$? lines=$(wc -l < /tmp/src-$3.csv) at ${SECONDS}s"; head -c 600 /tmp/src-$3.csv; echo; tail -3 /tmp/src-$3.err
  xz -6 -c /tmp/src-$3.csv > $OUT/src-$3.csv.xz
}
src 'hd128_general$' 28 softcap30
src 'hd128_plain' 5 plain
M='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
for t in "hd128_general\$ 28 softcap30" "hd128_plain 5 plain"; do set -- $t
  timeout 60 $NCU --clock-control none --metrics $M,sm__inst_executed.sum,sm__cycles_active.avg -k regex:$1 --launch-skip $2 --launch-count 1 /tmp/fc $A > $OUT/stall-$3.txt 2>&1
  echo "stall $3 rc=$? at ${SECONDS}s"; grep -E "smsp__|sm__" $OUT/stall-$3.txt | awk '$NF+0 > 0.05' | sort -k3 -g -r | head -14
done
echo "end at ${SECONDS}s"
