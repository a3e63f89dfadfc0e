#!/usr/bin/env bash
# FlashDJL multi-GPU context-parallel run, from an unpacked bundle (tests/gpu/bundle.sh). Needs >= 2 GPUs, the
# NVIDIA driver and libnccl.so.2; no Java, no Maven. Every step is bounded by `timeout` (and every child JVM by a
# watchdog), so one hang cannot eat the run. Logs go to ${OUT:-./out}.
#
#   run-cp.sh [steps...]   steps: topo nccl check bench (default: these four, in that order), prefill, prefill-kill
#     topo   nvidia-smi topo -m                                  -> topo.txt
#     nccl   NcclLauncher collectives kill (2 processes)         -> nccl.log
#     check  NcclLauncher attention: ring/Ulysses vs 1-GPU flash -> cp-check.log
#     bench  ContextParallelBench --spawn $CP_WORLD (default 2)   -> cp-bench.log
#     prefill       ContextParallelPrefillBench: the Llama-3.2-1B-shaped checkpoint (MODEL_DIR, written by
#                   python/hf_model_bench.py write when missing) prefilled across 1, 2 (and 4) GPUs, ring and
#                   Ulysses, 32k and 128k tokens: TTFT, scaling, logits vs 1 GPU -> cp-prefill.log, cp-prefill/
#     prefill-kill  the same, one rank killed mid-prefill (ring, then Ulysses) on the largest world; the others
#                   must exit with a timeout error within the group timeout -> cp-prefill-kill.log
#   The prefill steps run the model through DJL's PyTorch engine on the GPUs: set FLASHDJL_DJL_JNI (see below).
#
# Env: OUT, CP_CHECK (attention | attention-quick), CP_WORLD (GPUs for the bench, default 2),
#      CP_BENCH_ARGS (extra bench options, e.g. "--iters 3"),
#      MODEL_DIR (default /tmp/flashdjl-llama1b), CP_WORLDS (prefill worlds, default 1,2 or 1,2,4 by GPU count),
#      CP_PREFILL_ARGS (extra prefill options, e.g. "--lengths 32768 --reps 2"), CP_KILL_ARGS (fault-run options,
#      default "--lengths 131072 --kill-rank 1 --kill-after-layer 2 --timeout-s 30"),
#      FLASHDJL_DJL_JNI (DJL's JNI built for this machine's torch: libdjl_torch.so, copied into torch's lib dir),
#      T_NCCL, T_CHECK, T_BENCH, T_PREFILL, T_KILL (per-step limits in seconds), JAVA_OPTS.
set -uo pipefail
export NCCL_NVLS_ENABLE=0   # NVLink multicast off (every child inherits it)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-./out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
JAVA="$HERE/jre/bin/java"
CP="$HERE/lib/*"
JVM=(-Dai.djl.offline=true --enable-native-access=ALL-UNNAMED)
# shellcheck disable=SC2206
JVM+=(${JAVA_OPTS:-})
MODEL_DIR="${MODEL_DIR:-/tmp/flashdjl-llama1b}"
GPUS="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')"
if [ -z "${CP_WORLDS:-}" ]; then
  if [ "${GPUS:-0}" -ge 4 ]; then CP_WORLDS=1,2,4; else CP_WORLDS=1,2; fi
fi
LARGEST="${CP_WORLDS##*,}"
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(topo nccl check bench)
STATUS=0
note() { echo "[run-cp $(date -u +%H:%M:%S)] $*"; }
step() { # name, log, limit, command...
  local name="$1" log="$2" limit="$3"; shift 3
  local t0; t0=$(date +%s)
  note "$name (limit ${limit}s)"
  timeout -k 5 "$limit" "$@" > "$OUT/$log" 2>&1
  local rc=$?
  cat "$OUT/$log"
  note "$name: exit $rc in $(( $(date +%s) - t0 )) s"
  if [ "$rc" != 0 ] && [ "$STATUS" = 0 ]; then STATUS=$rc; fi
}
djl_gpu() { # DJL's JNI for this torch (as run-gpu.sh does), and the checkpoint; once
  [ -n "${DJL_READY:-}" ] && return 0
  DJL_READY=1
  if [ -n "${FLASHDJL_DJL_JNI:-}" ]; then
    local tl tv
    tl="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")' 2>/dev/null)"
    tv="$(python3 -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"
    if [ -n "$tl" ] && cp "$FLASHDJL_DJL_JNI" "$tl/"; then
      export PYTORCH_LIBRARY_PATH="$tl" PYTORCH_FLAVOR=cu128 PYTORCH_VERSION="$tv"
      note "DJL's JNI $FLASHDJL_DJL_JNI -> $tl (torch $tv)"
    else
      note "cannot install FLASHDJL_DJL_JNI=$FLASHDJL_DJL_JNI into torch's lib dir"
    fi
  else
    note "FLASHDJL_DJL_JNI not set: DJL will not see the GPUs and the prefill steps fail"
  fi
  if [ ! -f "$MODEL_DIR/reference.json" ]; then
    step model-write cp-model-write.log "${T_WRITE:-240}" python3 "$HERE/python/hf_model_bench.py" write "$MODEL_DIR"
  fi
}
[ -f "$HERE/BUILD-INFO.txt" ] && head -n 3 "$HERE/BUILD-INFO.txt"
for s in "${STEPS[@]}"; do
  case "$s" in
    topo) step topo topo.txt 20 nvidia-smi topo -m ;;
    nccl) step nccl nccl.log "${T_NCCL:-90}" "$JAVA" "${JVM[@]}" -cp "$CP" org.flashdjl.tests.gpu.NcclLauncher \
            collectives kill --kill-timeout 10 ;;
    check) step check cp-check.log "${T_CHECK:-80}" "$JAVA" "${JVM[@]}" -cp "$CP" \
            org.flashdjl.tests.gpu.NcclLauncher "${CP_CHECK:-attention}" ;;
    bench) step bench cp-bench.log "${T_BENCH:-80}" "$JAVA" "${JVM[@]}" -Dflashdjl.watchdog.s="${T_BENCH:-80}" \
            -cp "$CP" org.flashdjl.tests.gpu.ContextParallelBench --spawn "${CP_WORLD:-2}" ${CP_BENCH_ARGS:-} ;;
    prefill) djl_gpu
            step prefill cp-prefill.log "${T_PREFILL:-540}" "$JAVA" "${JVM[@]}" -Dflashdjl.watchdog.s="${T_PREFILL:-540}" \
              -cp "$CP" org.flashdjl.tests.gpu.ContextParallelPrefillBench --model "$MODEL_DIR" --worlds "$CP_WORLDS" \
              --out "$OUT/cp-prefill" --limit-s "$(( ${T_PREFILL:-540} - 30 ))" ${CP_PREFILL_ARGS:-} ;;
    prefill-kill) djl_gpu
            for m in ring ulysses; do
              step "prefill-kill $m" "cp-prefill-kill-$m.log" "${T_KILL:-220}" "$JAVA" "${JVM[@]}" -cp "$CP" \
                org.flashdjl.tests.gpu.ContextParallelPrefillBench --model "$MODEL_DIR" --worlds "$LARGEST" \
                --methods "$m" --out "$OUT/cp-prefill-kill-$m" --limit-s 90 \
                ${CP_KILL_ARGS:---lengths 131072 --kill-rank 1 --kill-after-layer 2 --timeout-s 30}
            done ;;
    *) note "unknown step $s (topo nccl check bench prefill prefill-kill)"; STATUS=2 ;;
  esac
done
note "done, exit $STATUS; results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit "$STATUS"
