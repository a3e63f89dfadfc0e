#!/usr/bin/env bash
# Run 108 (session 20): the final tree (run 107's push merge for the _wide_pair kernels taken). decode_bench tree =
# b78e9eb (run 105's kernels) vs final, three passes, checks on 2-split shapes; compute-sanitizer memcheck / racecheck
# / synccheck on the pair and on the small shapes; the Java GPU suite and run-gpu.sh --paged --bench-only (the Java
# path, torch SDPA peers in the same call) over the final bundle.
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/dv && tar xJf $T/bundle.txz -C /tmp/b && tar xJf $T/dv27.txz -C /tmp/dv
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "final check: $(timeout 60 /tmp/dv/db_final --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok']) for j in map(json.loads,sys.stdin)])")"
for k in wide narrow compact auto; do echo "final small $k: $(timeout 60 /tmp/dv/db_final --reps 0 --small --kernel $k 2>&1 | grep -c '"ok":true') ok"; done
SH="--shape 1:65536:4096 --shape 8:16384:8192 --shape 4:16384:8192 --shape 4:32768:8192 --shape 64:4096:4096"
for pass in 1 2 3; do for v in tree final; do timeout 60 /tmp/dv/db_$v --reps 30 --tag $v $SH >> $OUT/decode.jsonl 2>> $OUT/decode.err; done; done
python3 tests/gpu/perf_summary.py decode $OUT/decode.jsonl
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do for a in "--shape 3:4999:2512" "--small --kernel wide"; do
  timeout 120 $CS --tool $tool --print-limit 20 /tmp/dv/db_final --reps 0 $a > /tmp/san.txt 2>&1
  echo "$tool [$a] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
done; done | tee $OUT/sanitizer.txt
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 330 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1
echo "suite rc=$? at ${SECONDS}s"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > "$OUT/suite-summary.txt"
tr '\n' ' ' < "$OUT/suite-summary.txt"; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
echo "99 KB cases ok: $(grep -c '99 KB\] \[OK\]' /tmp/suite.log)"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/paged timeout 240 /tmp/b/run-gpu.sh --paged --bench-only > /tmp/paged.log 2>&1
echo "paged bench rc=$? at ${SECONDS}s"
cp /tmp/paged/bench-paged.jsonl /tmp/paged/bench-paged-peers.jsonl $OUT/ 2>/dev/null
grep -E "^flashdjl-paged|^torch-sdpa-cudnn|copy bandwidth \(" /tmp/paged.log | head -16
