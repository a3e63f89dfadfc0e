#!/usr/bin/env bash
# Run 78 (session 17): softcap's range pass as short chains. Run 77's attribution put 5 points of softcap 30's 22 in
# the range test (one FMNMX per score in one 64-long dependent chain, before the tier votes). Candidates (reduced
# fatbins: the fp16 hd 128 kernels only, built from this tree's body with one edit each): tree = each row's raw max
# and min in four independent chains, the tier test from them, and the tiers' finish reusing the row maxima (the
# same FMNMX count, chains of 8 instead of 64 + 16); tree2 = tree + the row sum in two chains. base = unedited.
# Also: the SASS of the hd 128 general kernel (base, lin = run 77's linear-term variant, tree2) and plain, in one
# archive; ncu instruction counts per pipe for softcap 30 (base, tree2).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/s && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/s17b.txz -C /tmp/s
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
for v in base tree tree2 lin; do mkdir -p /tmp/v_$v && cp /tmp/fb/* /tmp/v_$v/ && cp /tmp/s/$v/flash_fwd_sm90.fatbin /tmp/v_$v/; done
md5sum /tmp/v_*/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/sass
cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_plain_persistent /tmp/fb/flash_fwd_sm90.fatbin > /tmp/sass/plain_persistent.txt
cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_plain /tmp/fb/flash_fwd_sm90.fatbin > /tmp/sass/plain.txt
for v in base lin tree2; do cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_general /tmp/v_$v/flash_fwd_sm90.fatbin > /tmp/sass/general-$v.txt; done
tar cf - -C /tmp/sass . | xz -6 > $OUT/sass.txz; ls -la /tmp/sass; echo "sass at ${SECONDS}s"
for pass in 1 2; do for v in base tree tree2; do
  timeout 60 /tmp/fc --bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/v_$v --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"burst\"/" >> $OUT/general.jsonl
done; done; echo "burst at ${SECONDS}s"
for v in base tree2; do
  timeout 90 /tmp/fc --bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/v_$v --warm-ms 800 --seconds 0.7 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"sustained\"/" >> $OUT/general.jsonl
done; echo "sustained at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base tree tree2
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
M=sm__inst_executed.sum,sm__inst_executed_pipe_alu.sum,sm__inst_executed_pipe_fma.sum,sm__inst_executed_pipe_fmaheavy.sum,sm__inst_executed_pipe_xu.sum,sm__inst_executed_pipe_uniform.sum,smsp__inst_executed_op_local_ld.sum,smsp__inst_executed_op_local_st.sum,sm__cycles_active.avg
for v in base tree2; do
  timeout 60 $NCU --clock-control none --metrics $M -k regex:'hd128_general$' --launch-skip 28 --launch-count 1 /tmp/fc --bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/v_$v > $OUT/ncu-$v.txt 2>&1; echo "ncu $v rc=$? at ${SECONDS}s"
  grep -E "sm__|smsp__" $OUT/ncu-$v.txt
done
echo "end at ${SECONDS}s"
