#!/usr/bin/env bash
# FlashDJL GPU run, from an unpacked bundle (tests/gpu/bundle.sh): needs the NVIDIA driver, and python3 with torch
# for the SDPA peers; no Java, no Maven, no network. Logs and results go to ${OUT:-./out}.
#
#   run-gpu.sh               nvidia-smi, the GPU test suite (JUnit tag "gpu"), FlashBench, sdpa_bench.py,
#                            compare_bench.py
#   run-gpu.sh --tests-only  nvidia-smi and the GPU test suite
#   run-gpu.sh --bench-only  nvidia-smi and the benchmarks
#   run-gpu.sh --quick       a shorter sweep (no 1023-long sequences) and short benchmarks (hd 128, L 1k/4k)
#   run-gpu.sh --paged       nvidia-smi and only the paged-attention GPU work: MergeStateGpuTest,
#                            PagedDecodeGpuTest, PagedPrefillGpuTest, PagedDecodeBench, decode_peer_bench.py (torch
#                            copy + SDPA peers), PagedPrefillBench, prefill_peer_bench.py (SDPA on contiguous KV);
#                            with --tests-only / --bench-only just that half
#   run-gpu.sh --cascade     nvidia-smi and only the shared-prefix (cascade) GPU work: SharedPrefixGpuTest and
#                            CascadeBench (cascade vs plain paged decode); --tests-only / --bench-only as above
#   run-gpu.sh --djl         nvidia-smi and only the GPU tests that run through DJL's PyTorch engine on CUDA NDArrays
#                            (JUnit tag djl: operators, blocks, caches, model, generators, serving)
#   run-gpu.sh --model       nvidia-smi and only the model benchmark: hf_model_bench.py writes a Llama-3.2-1B-shaped
#                            fp16 checkpoint (MODEL_DIR, default /tmp/flashdjl-llama1b) and times Hugging Face
#                            transformers on it; ModelBench times FlashDJL on the same file (with --djl: the djl tests
#                            too, the HF logits test included)
#   run-gpu.sh --serving     nvidia-smi and only the serving load benchmark (ServingLoadBench) on the model benchmark's
#                            checkpoint (MODEL_DIR, written as for --model): 64 clients x SERVING_REQUESTS (default 16)
#                            requests through DJL's Criteria (3 rounds, fp16), against the same requests one at a
#                            time; then 64 x 4 in fp32, where every answer must equal its single-request answer
#   run-gpu.sh --fixtures    nvidia-smi and only make_hf_fixtures.py: the model tests' reference checkpoints and
#                            logits, written by transformers into $OUT/hf-fixtures.tgz
#
# DJL on the GPU: the steps that use DJL's PyTorch engine need its JNI built for this machine's torch. Set
# FLASHDJL_DJL_JNI=/path/libdjl_torch.so: it is copied into torch's lib dir and PYTORCH_LIBRARY_PATH/_FLAVOR/_VERSION
# are set for every JVM. Without it those steps skip (the DJL tests report "DJL sees no GPU").
#
# Env: OUT (results dir), FLASHDJL_DEVICE (CUDA ordinal, default 0), JAVA_OPTS (extra JVM options), MODEL_DIR,
#      FLASHDJL_DJL_JNI, MODEL_BENCH_ARGS, SERVING_REQUESTS, SERVING_BENCH_ARGS, FLASHDJL_BENCH_IDLE_MS (idle GPU time
#      before each FlashBench / sdpa_bench.py shape, default 1000: both sides timed from the same clock state).
# Exit status: 0 when every step that ran succeeded, else the first failing step's status.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_TESTS=1
RUN_BENCH=1
QUICK=0
PAGED=0
CASCADE=0
DJL=0
MODEL=0
SERVING=0
FIXTURES=0
for arg in "$@"; do
  case "$arg" in
    --tests-only) RUN_BENCH=0 ;;
    --bench-only) RUN_TESTS=0 ;;
    --quick) QUICK=1 ;;
    --paged) PAGED=1 ;;
    --cascade) CASCADE=1 ;;
    --djl) DJL=1 ;;
    --model) MODEL=1 ;;
    --serving) SERVING=1 ;;
    --fixtures) FIXTURES=1 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "unknown option $arg; use --tests-only, --bench-only, --quick, --paged, --cascade, --djl, --model," \
         "--serving, --fixtures" >&2; exit 2 ;;
  esac
done
PAGED_TESTS=0
PAGED_BENCH=0
CASCADE_TESTS=0
CASCADE_BENCH=0
if [ "$CASCADE" = 1 ]; then  # only the cascade steps (with --paged too: both)
  CASCADE_TESTS=$RUN_TESTS
  CASCADE_BENCH=$RUN_BENCH
  [ "$PAGED" = 1 ] || { RUN_TESTS=0; RUN_BENCH=0; }
fi
if [ "$DJL" = 1 ] || [ "$MODEL" = 1 ] || [ "$SERVING" = 1 ] || [ "$FIXTURES" = 1 ]; then  # only the steps named
  [ "$PAGED" = 1 ] || [ "$CASCADE" = 1 ] || { RUN_TESTS=0; RUN_BENCH=0; }
fi
if [ "$PAGED" = 1 ]; then  # only the paged steps, each half as --tests-only / --bench-only allow
  PAGED_TESTS=$RUN_TESTS
  PAGED_BENCH=$RUN_BENCH
  RUN_TESTS=0
  RUN_BENCH=0
fi
OUT="${OUT:-./out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DEVICE="${FLASHDJL_DEVICE:-0}"
JAVA="$HERE/jre/bin/java"
CP="$HERE/lib/*"
STATUS=0
SUMMARY=()

note() { echo "[run-gpu] $*" | tee -a "$OUT/run-gpu.log"; }
record() { # step name, exit status
  SUMMARY+=("$1: $( [ "$2" = 0 ] && echo ok || echo "FAILED (exit $2)")")
  if [ "$2" != 0 ] && [ "$STATUS" = 0 ]; then STATUS="$2"; fi
}

: > "$OUT/run-gpu.log"
note "bundle $HERE -> results in $OUT ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
[ -f "$HERE/BUILD-INFO.txt" ] && cp "$HERE/BUILD-INFO.txt" "$OUT/" && head -n 6 "$HERE/BUILD-INFO.txt"

note "nvidia-smi"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"
else
  note "nvidia-smi not found" | tee "$OUT/nvidia-smi.txt"
fi

MODEL_DIR="${MODEL_DIR:-/tmp/flashdjl-llama1b}"
JVM=(-Xmx16g -Dai.djl.offline=true -Dflashdjl.gpu.device="$DEVICE" -Dflashdjl.hf1b.dir="$MODEL_DIR")
if [ -n "${FLASHDJL_DJL_JNI:-}" ]; then
  # DJL's JNI for this machine's torch, where DJL looks first: torch's own lib dir.
  TORCH_LIB="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")' 2>/dev/null)"
  TORCH_VERSION="$(python3 -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"
  if [ -n "$TORCH_LIB" ] && cp "$FLASHDJL_DJL_JNI" "$TORCH_LIB/"; then
    export PYTORCH_LIBRARY_PATH="$TORCH_LIB" PYTORCH_FLAVOR=cu128 PYTORCH_VERSION="$TORCH_VERSION"
    note "DJL's JNI $FLASHDJL_DJL_JNI -> $TORCH_LIB (torch $TORCH_VERSION)"
  else
    note "cannot install FLASHDJL_DJL_JNI=$FLASHDJL_DJL_JNI into torch's lib dir: DJL GPU steps will skip"
  fi
else
  note "FLASHDJL_DJL_JNI not set: the tests through DJL's PyTorch engine skip (no GPU seen by DJL)"
fi
JAVA_MAJOR="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$HERE/jre/release" 2>/dev/null)"
if [ "${JAVA_MAJOR:-17}" -ge 22 ]; then
  # JCuda and JNA load native libraries: allow it without warnings on newer runtimes.
  JVM+=(--enable-native-access=ALL-UNNAMED)
fi
# shellcheck disable=SC2206
JVM+=(${JAVA_OPTS:-})
if ! "$JAVA" -version >/dev/null 2>&1; then
  note "the bundled JRE does not start:"; "$JAVA" -version 2>&1 | tee -a "$OUT/run-gpu.log"
  exit 3
fi

if [ "$RUN_TESTS" = 1 ]; then
  note "GPU test suite (JUnit tag gpu$( [ "$QUICK" = 1 ] && echo ', quick'))"
  rm -f "$OUT/gpu-errors.tsv"
  t0=$(date +%s)
  "$JAVA" "${JVM[@]}" -Dflashdjl.gpu.quick="$( [ "$QUICK" = 1 ] && echo true || echo false)" \
    -Dflashdjl.gpu.report="$OUT/gpu-errors.tsv" \
    -cp "$HERE/junit/junit-platform-console-standalone.jar:$CP" org.junit.platform.console.ConsoleLauncher \
    execute --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --fail-if-no-tests \
    --select-package=org.flashdjl.tests.gpu --include-tag=gpu --reports-dir="$OUT/junit" \
    2>&1 | tee "$OUT/gpu-tests.log"
  rc=${PIPESTATUS[0]}
  note "GPU test suite: exit $rc in $(( $(date +%s) - t0 )) s (JUnit XML in $OUT/junit, per-case errors in" \
       "$OUT/gpu-errors.tsv)"
  record "GPU tests" "$rc"
fi

if [ "$RUN_BENCH" = 1 ]; then
  # Both sides idle this long before each shape, so each starts from rest at the top clock (the H200's power cap
  # lowers the clock after about a second of full load: a short timing otherwise measures what ran before it)
  BENCH_IDLE_MS="${FLASHDJL_BENCH_IDLE_MS:-1000}"
  QUICK_ARG=()
  [ "$QUICK" = 1 ] && QUICK_ARG=(--quick)
  note "FlashBench (flashdjl-java)"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.FlashBench --device "$DEVICE" --idle-ms "$BENCH_IDLE_MS" \
    ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} \
    > "$OUT/bench-flashdjl.jsonl" 2> >(tee "$OUT/bench-flashdjl.log" >&2)
  rc=$?
  cat "$OUT/bench-flashdjl.jsonl"
  record "FlashBench" "$rc"

  if ! command -v python3 >/dev/null 2>&1; then
    note "python3 not found: skipping sdpa_bench.py and compare_bench.py"
    record "python3" 127
  else
    if [ -f "$HERE/python/sdpa_bench.py" ]; then
      note "sdpa_bench.py (torch SDPA peers)"
      CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-$DEVICE}" python3 "$HERE/python/sdpa_bench.py" --idle-ms "$BENCH_IDLE_MS" \
        ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} \
        > "$OUT/bench-sdpa.jsonl" 2> >(tee "$OUT/bench-sdpa.log" >&2)
      rc=$?
      cat "$OUT/bench-sdpa.jsonl"
      record "sdpa_bench.py" "$rc"
    else
      note "python/sdpa_bench.py not in the bundle: skipped"
    fi
    if [ -f "$HERE/python/compare_bench.py" ]; then
      note "compare_bench.py"
      # compare_bench.py reads impl "flashdjl" as ours: rename the Java runner's rows, drop failed shapes.
      grep -v '"error"' "$OUT/bench-flashdjl.jsonl" | sed 's/"impl":"flashdjl-java"/"impl":"flashdjl"/' \
        > "$OUT/bench-flashdjl-ours.jsonl" || true
      inputs=("$OUT/bench-flashdjl-ours.jsonl")
      [ -s "$OUT/bench-sdpa.jsonl" ] && inputs+=("$OUT/bench-sdpa.jsonl")
      python3 "$HERE/python/compare_bench.py" "${inputs[@]}" 2>&1 | tee "$OUT/bench-compare.txt"
      record "compare_bench.py" "${PIPESTATUS[0]}"
    else
      note "python/compare_bench.py not in the bundle: skipped"
    fi
  fi
fi

if [ "$PAGED_TESTS" = 1 ]; then
  note "paged GPU tests (MergeStateGpuTest, PagedDecodeGpuTest, PagedPrefillGpuTest$( [ "$QUICK" = 1 ] && echo ', quick'))"
  t0=$(date +%s)
  "$JAVA" "${JVM[@]}" -Dflashdjl.gpu.quick="$( [ "$QUICK" = 1 ] && echo true || echo false)" \
    -cp "$HERE/junit/junit-platform-console-standalone.jar:$CP" org.junit.platform.console.ConsoleLauncher \
    execute --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --fail-if-no-tests \
    --select-class=org.flashdjl.tests.gpu.MergeStateGpuTest --select-class=org.flashdjl.tests.gpu.PagedDecodeGpuTest \
    --select-class=org.flashdjl.tests.gpu.PagedPrefillGpuTest \
    --include-tag=gpu --reports-dir="$OUT/junit-paged" 2>&1 | tee "$OUT/gpu-tests-paged.log"
  rc=${PIPESTATUS[0]}
  note "paged GPU tests: exit $rc in $(( $(date +%s) - t0 )) s (per-case errors: grep '^.*paged ' in the log)"
  record "paged GPU tests" "$rc"
fi

if [ "$PAGED_BENCH" = 1 ]; then
  QUICK_ARG=()
  [ "$QUICK" = 1 ] && QUICK_ARG=(--quick)
  note "PagedDecodeBench"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.PagedDecodeBench --device "$DEVICE" \
    ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} > "$OUT/bench-paged.jsonl" 2> >(tee "$OUT/bench-paged.log" >&2)
  rc=$?
  cat "$OUT/bench-paged.jsonl"
  record "PagedDecodeBench" "$rc"
  if command -v python3 >/dev/null 2>&1 && [ -f "$HERE/python/decode_peer_bench.py" ]; then
    note "decode_peer_bench.py (torch copy bandwidth, SDPA cuDNN/flash/efficient on contiguous KV)"
    CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-$DEVICE}" python3 "$HERE/python/decode_peer_bench.py" \
      --ours "$OUT/bench-paged.jsonl" ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} > "$OUT/bench-paged-peers.jsonl" \
      2> >(tee "$OUT/bench-paged-peers.log" >&2)
    rc=$?
    cat "$OUT/bench-paged-peers.jsonl"
    record "decode_peer_bench.py" "$rc"
  else
    note "python3 or python/decode_peer_bench.py missing: skipped the torch peers"
  fi
  note "PagedPrefillBench (paged prefill: Hopper wgmma kernels, mma.sync kernels, dense flash on contiguous KV)"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.PagedPrefillBench --device "$DEVICE" \
    ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} > "$OUT/bench-paged-prefill.jsonl" 2> >(tee "$OUT/bench-paged-prefill.log" >&2)
  rc=$?
  cat "$OUT/bench-paged-prefill.jsonl"
  record "PagedPrefillBench" "$rc"
  if command -v python3 >/dev/null 2>&1 && [ -f "$HERE/python/prefill_peer_bench.py" ]; then
    note "prefill_peer_bench.py (torch SDPA cuDNN/flash/efficient on contiguous KV, bottom-right causal)"
    CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-$DEVICE}" python3 "$HERE/python/prefill_peer_bench.py" \
      --ours "$OUT/bench-paged-prefill.jsonl" > "$OUT/bench-paged-prefill-peers.jsonl" \
      2> >(tee "$OUT/bench-paged-prefill-peers.log" >&2)
    rc=$?
    cat "$OUT/bench-paged-prefill-peers.jsonl"
    record "prefill_peer_bench.py" "$rc"
  fi
fi

if [ "$CASCADE_TESTS" = 1 ]; then
  note "cascade GPU tests (SharedPrefixGpuTest)"
  t0=$(date +%s)
  "$JAVA" "${JVM[@]}" -Dflashdjl.gpu.quick="$( [ "$QUICK" = 1 ] && echo true || echo false)" \
    -cp "$HERE/junit/junit-platform-console-standalone.jar:$CP" org.junit.platform.console.ConsoleLauncher \
    execute --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --fail-if-no-tests \
    --select-class=org.flashdjl.tests.gpu.SharedPrefixGpuTest \
    --include-tag=gpu --reports-dir="$OUT/junit-cascade" 2>&1 | tee "$OUT/gpu-tests-cascade.log"
  rc=${PIPESTATUS[0]}
  note "cascade GPU tests: exit $rc in $(( $(date +%s) - t0 )) s (per-case errors: grep 'cascade ' in the log)"
  record "cascade GPU tests" "$rc"
fi

if [ "$CASCADE_BENCH" = 1 ]; then
  QUICK_ARG=()
  [ "$QUICK" = 1 ] && QUICK_ARG=(--quick)
  note "CascadeBench"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.CascadeBench --device "$DEVICE" \
    ${QUICK_ARG[@]+"${QUICK_ARG[@]}"} > "$OUT/bench-cascade.jsonl" 2> >(tee "$OUT/bench-cascade.log" >&2)
  rc=$?
  cat "$OUT/bench-cascade.jsonl"
  record "CascadeBench" "$rc"
fi

if [ "$FIXTURES" = 1 ]; then
  note "make_hf_fixtures.py (transformers reference checkpoints and logits)"
  rm -rf "$OUT/hf-fixtures"
  python3 "$HERE/python/make_hf_fixtures.py" "$OUT/hf-fixtures" 2>&1 | tee "$OUT/hf-fixtures.log"
  rc=${PIPESTATUS[0]}
  tar -C "$OUT" -czf "$OUT/hf-fixtures.tgz" hf-fixtures && rm -rf "$OUT/hf-fixtures"
  record "make_hf_fixtures.py" "$rc"
fi

if { [ "$MODEL" = 1 ] || [ "$SERVING" = 1 ]; } && [ ! -f "$MODEL_DIR/reference.json" ]; then
  note "hf_model_bench.py write $MODEL_DIR"
  python3 "$HERE/python/hf_model_bench.py" write "$MODEL_DIR" 2>&1 | tee "$OUT/hf-model-write.log"
  record "hf_model_bench.py write" "${PIPESTATUS[0]}"
fi

if [ "$DJL" = 1 ]; then
  note "DJL GPU tests (JUnit tag djl)"
  t0=$(date +%s)
  "$JAVA" "${JVM[@]}" -Dflashdjl.gpu.quick="$( [ "$QUICK" = 1 ] && echo true || echo false)" \
    -cp "$HERE/junit/junit-platform-console-standalone.jar:$CP" org.junit.platform.console.ConsoleLauncher \
    execute --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --fail-if-no-tests \
    --select-package=org.flashdjl.tests.gpu --include-tag=djl --reports-dir="$OUT/junit-djl" \
    2>&1 | tee "$OUT/gpu-tests-djl.log"
  rc=${PIPESTATUS[0]}
  note "DJL GPU tests: exit $rc in $(( $(date +%s) - t0 )) s"
  record "DJL GPU tests" "$rc"
fi

if [ "$MODEL" = 1 ]; then
  note "hf_model_bench.py bench (Hugging Face transformers peer)"
  python3 "$HERE/python/hf_model_bench.py" bench "$MODEL_DIR" > "$OUT/bench-model-hf.jsonl" \
    2> >(tee "$OUT/bench-model-hf.log" >&2)
  rc=$?
  cat "$OUT/bench-model-hf.jsonl"
  record "hf_model_bench.py bench" "$rc"
  note "ModelBench (FlashDJL)"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.ModelBench --model "$MODEL_DIR" ${MODEL_BENCH_ARGS:-} \
    > "$OUT/bench-model.jsonl" 2> >(tee "$OUT/bench-model.log" >&2)
  rc=$?
  cat "$OUT/bench-model.jsonl"
  record "ModelBench" "$rc"
fi

if [ "$SERVING" = 1 ]; then
  note "ServingLoadBench (64 clients through Criteria vs one request at a time)"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.bench.ServingLoadBench --model "$MODEL_DIR" --device gpu \
    --dtype float16 --clients 64 --requests "${SERVING_REQUESTS:-16}" --rounds 3 ${SERVING_BENCH_ARGS:-} \
    2>&1 | tee "$OUT/bench-serving.log"
  record "ServingLoadBench" "${PIPESTATUS[0]}"
  note "ServingLoadBench in fp32 (answers must equal the single-request answers)"
  "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.bench.ServingLoadBench --model "$MODEL_DIR" --device gpu \
    --dtype float32 --clients 64 --requests 4 ${SERVING_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-serving-fp32.log"
  record "ServingLoadBench fp32" "${PIPESTATUS[0]}"
fi

if command -v python3 >/dev/null 2>&1 && [ -f "$HERE/python/bench_charts.py" ]; then
  charts=()
  for f in bench-flashdjl.jsonl bench-sdpa.jsonl bench-paged.jsonl bench-paged-peers.jsonl bench-cascade.jsonl \
           bench-model.jsonl bench-model-hf.jsonl; do
    [ -s "$OUT/$f" ] && charts+=("$OUT/$f")
  done
  if [ ${#charts[@]} -gt 0 ]; then
    note "bench_charts.py -> $OUT/charts"
    python3 "$HERE/python/bench_charts.py" "$OUT/charts" "${charts[@]}" 2>&1 | tee "$OUT/charts.log"
    record "bench_charts.py" "${PIPESTATUS[0]}"
  fi
fi

note "summary:"
for line in ${SUMMARY[@]+"${SUMMARY[@]}"}; do note "  $line"; done
note "results: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$STATUS"
