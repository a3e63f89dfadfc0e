set -x
R=$PWD; mkdir -p /tmp/w && cd /tmp/w && tar xzf $R/.devcarry/ck.tgz && cd ck
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv
./flash_check --check --kernels sm90 --fatbin-dir new > $OUT/check_sm90.txt 2>&1; echo rc=$?; grep -i "fail" $OUT/check_sm90.txt | head -20; tail -2 $OUT/check_sm90.txt
timeout 200 compute-sanitizer --tool memcheck ./flash_check --check --kernels sm90 --max-work 3e6 --fatbin-dir new > $OUT/memcheck.txt 2>&1; echo rc=$?; tail -4 $OUT/memcheck.txt
for r in 1 2; do for b in base new; do echo "== $b $r"; ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir $b > $OUT/bg_${b}_$r.jsonl 2>&1; done; done
for b in base new; do ./flash_check --bench-general --kernels sm90 --hd 256 --fatbin-dir $b > $OUT/bg256_${b}.jsonl 2>&1; done
for f in $OUT/bg*.jsonl; do echo "== $f"; cat $f | cut -c1-200; done
