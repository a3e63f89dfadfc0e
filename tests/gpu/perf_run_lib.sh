#!/usr/bin/env bash
# Shell functions for the one-off device calls recorded in docs/perf-runs/*-command.sh (session 17: runs 75-81 wrote
# these steps inline each time). Source it from the repository root on the GPU machine:
#   . tests/gpu/perf_run_lib.sh
#   bench_general burst OUT.jsonl base cand      # flash_check --bench-general over /tmp/<variant> for each variant
#   bench_general sustained OUT.jsonl base cand  # (sustained: hd 128 only); rows tagged "impl":"<variant>","mode":...
#   swap_ops_fatbins /tmp/b/lib /tmp/cand flash_fwd_sm90.fatbin paged_prefill_sm90.fatbin
#                                                # the bundle's ops jar rewritten with those fatbins from the folder,
#                                                # so that run-gpu.sh --tests-only runs the Java suite over a candidate
#   gpu_suite /tmp/b /tmp/libdjl_torch.so        # that suite (run-gpu.sh --tests-only, 330 s at most): its JUnit
#                                                # counts to $OUT/suite-summary.txt and stdout, failures' context
#   decode_checks db_a db_b                      # decode_bench variants (paged_decode.cu copies built into decode_bench,
#                                                # its header says how): checks on 2- and 16-split shapes, small shapes
#   decode_passes 3 "--shape 1:65536:4096" db_a db_b   # interleaved timing passes to $OUT/decode.jsonl, summarised
#   decode_sanitize db_b                         # compute-sanitizer memcheck / racecheck / synccheck on small shapes
# Expects /tmp/fc (flash_check, tests/gpu/devcarry.sh's fc.xz) and one folder of fatbins per variant under /tmp;
# the decode functions take paths of decode_bench binaries (their tag: the file name without db_).

# bench_general MODE OUT VARIANT...: MODE burst (--idle-ms 800, every head dim) or sustained (--warm-ms 800
# --seconds 0.7, hd 128); appends the JSON lines to OUT; $BENCH_ARGS (e.g. "--hd 128") goes to flash_check too.
# Summary: tests/gpu/perf_summary.py general OUT VARIANT...
bench_general() {
  local mode=$1 out=$2 args v
  shift 2
  case "$mode" in
    burst) args="--idle-ms 800" ;;
    sustained) args="--warm-ms 800 --seconds 0.7 --hd 128" ;;
    *) echo "bench_general: mode burst|sustained, got '$mode'" >&2; return 2 ;;
  esac
  for v in "$@"; do
    # shellcheck disable=SC2086
    timeout 90 /tmp/fc --bench-general --kernels sm90 --fatbin-dir "/tmp/$v" $args ${BENCH_ARGS:-} 2>/dev/null | grep '^{' |
      sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> "$out"
  done
}

# swap_ops_fatbins LIB FATBIN_DIR NAME...: replaces the named fatbins inside LIB's flashdjl-ops jar by FATBIN_DIR's.
swap_ops_fatbins() {
  python3 - "$@" <<'PY'
import os, shutil, sys, zipfile
lib, fbdir, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
missing = sorted(x for x in names if not os.path.isfile(os.path.join(fbdir, x)))
if missing:
    sys.exit('swap_ops_fatbins: not in %s: %s' % (fbdir, ' '.join(missing)))
jar = [x for x in sorted(os.listdir(lib)) if x.startswith('flashdjl-ops-') and x.endswith('.jar')
       and not x.endswith(('-tests.jar', '-sources.jar', '-javadoc.jar'))][0]
src = os.path.join(lib, jar)
tmp = src + '.new'
n = 0
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zo:
    for it in zi.infolist():
        name = os.path.basename(it.filename)
        if name in names:
            with open(os.path.join(fbdir, name), 'rb') as f:
                data = f.read()
            n += 1
        else:
            data = zi.read(it.filename)
        zo.writestr(it, data)
shutil.move(tmp, src)
print('jar rewritten:', jar, n, 'of', len(names), 'fatbins')
sys.exit(0 if n == len(names) else 1)
PY
}

# gpu_suite BUNDLE JNI: the Java GPU suite of an unpacked bundle (run-gpu.sh --tests-only) with DJL's PyTorch JNI at
# JNI; writes the JUnit counts to $OUT/suite-summary.txt and prints them with the context of any failure.
gpu_suite() {
  # 330 s: the suite ran 160-230 s in session 20 (365 tests)
  FLASHDJL_DJL_JNI="$2" OUT=/tmp/suite timeout 330 "$1/run-gpu.sh" --tests-only > /tmp/suite.log 2>&1
  echo "suite rc=$? at ${SECONDS}s"
  grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > "$OUT/suite-summary.txt"
  tr '\n' ' ' < "$OUT/suite-summary.txt"; echo
  grep -B2 -A12 "\[X\]" /tmp/suite.log | head -40
}

# decode_checks DB...: each decode_bench binary's check (the CPU reference) on 2-split shapes (the pair kernels), a
# 16-split 1 x 64k, and --small (1, 5 and 25 splits of 3 x 4999) on every kernel form; one line per binary and form.
decode_checks() {
  local db k
  for db in "$@"; do
    echo "$(basename "$db") check: $(timeout 60 "$db" --reps 0 --shape 3:4999:2512 --shape 8:16384:8192 --shape 5:300:160 \
      --shape 1:65536:4096 2>&1 | grep '^{' | python3 -c "import json,sys; print([(j['kernel'],j['batch'],j['L'],j['splits'],j['ok']) for j in map(json.loads,sys.stdin)])")"
    for k in wide narrow compact auto; do
      echo "$(basename "$db") small $k: $(timeout 60 "$db" --reps 0 --small --kernel "$k" 2>&1 | grep -c '"ok":true') ok, $(
        timeout 60 "$db" --reps 0 --small --kernel "$k" 2>&1 | grep -c '"ok":false') bad"
    done
  done
}

# decode_passes N SHAPES DB...: N interleaved passes of every binary over SHAPES (decode_bench --shape arguments, one
# string), each row tagged with the binary's name without db_, appended to $OUT/decode.jsonl; then the summary.
decode_passes() {
  local n=$1 shapes=$2 pass db
  shift 2
  for ((pass = 0; pass < n; pass++)); do
    for db in "$@"; do
      # shellcheck disable=SC2086
      timeout 60 "$db" --reps 30 --tag "$(basename "$db" | sed 's/^db_//')" $shapes >> "$OUT/decode.jsonl" 2>> "$OUT/decode.err"
    done
  done
  python3 tests/gpu/perf_summary.py decode "$OUT/decode.jsonl"
}

# decode_sanitize DB: compute-sanitizer memcheck, racecheck and synccheck over DB's checks (3 x 4999 / 2 splits, the
# small shapes on the wide and narrow kernels); one line each, also in $OUT/sanitizer.txt.
decode_sanitize() {
  local cs tool a
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in memcheck racecheck synccheck; do
    for a in "--shape 3:4999:2512" "--small --kernel wide" "--small --kernel narrow"; do
      # shellcheck disable=SC2086
      timeout 120 "$cs" --tool "$tool" --print-limit 20 "$1" --reps 0 $a > /tmp/san.txt 2>&1
      echo "$tool [$a] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.txt | tr '\n' ' ') $(grep -c '"ok":true' /tmp/san.txt) ok"
    done
  done | tee -a "$OUT/sanitizer.txt"
}
