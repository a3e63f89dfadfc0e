R=$PWD; mkdir -p /tmp/w && cd /tmp/w && tar xzf $R/.devcarry/ck.tgz && cd ck
for k in plain general; do cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_$k new/flash_fwd_sm90.fatbin > $OUT/$k.sass; done
cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_general base/flash_fwd_sm90.fatbin > $OUT/general_base.sass
run() { ncu --section SourceCounters --section WarpStateStats --metrics smsp__pcsamp_sample_count -k regex:$1 --launch-skip $2 --launch-count 1 --page source --print-source sass --csv ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir new > $OUT/src_$3.csv 2> $OUT/src_$3.err; echo "$3 rc=$? $(wc -c < $OUT/src_$3.csv)"; }
run hd128_plain 5 plain
run hd128_general 5 general
run hd128_general 51 alibi
ncu --section WarpStateStats --print-details all -k regex:hd128_general --launch-skip 5 --launch-count 1 ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir new > $OUT/ws_general.txt 2>&1
ncu --section WarpStateStats --print-details all -k regex:hd128_plain --launch-skip 5 --launch-count 1 ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir new > $OUT/ws_plain.txt 2>&1
cd $OUT && xz -T4 *.csv *.sass; ls -la $OUT; head -c 1500 $OUT/src_plain.err
