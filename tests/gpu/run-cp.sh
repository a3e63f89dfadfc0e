#!/usr/bin/env bash
# FlashDJL multi-GPU context-parallel run, from an unpacked bundle (tests/gpu/bundle.sh). Needs >= 2 GPUs, the
# NVIDIA driver and libnccl.so.2; no Java, no Maven. Every step is bounded by `timeout` (and every child JVM by a
# watchdog), so one hang cannot eat the run. Logs go to ${OUT:-./out}.
#
#   run-cp.sh [steps...]   steps: topo nccl check bench (default: all four, in that order)
#     topo   nvidia-smi topo -m                                  -> topo.txt
#     nccl   NcclLauncher collectives kill (2 processes)         -> nccl.log
#     check  NcclLauncher attention: ring/Ulysses vs 1-GPU flash -> cp-check.log
#     bench  ContextParallelBench --spawn $CP_WORLD (default 2)   -> cp-bench.log
#
# Env: OUT, CP_CHECK (attention | attention-quick), CP_WORLD (GPUs for the bench, default 2),
#      CP_BENCH_ARGS (extra bench options, e.g. "--iters 3"),
#      T_NCCL, T_CHECK, T_BENCH (per-step limits in seconds), JAVA_OPTS.
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
    *) note "unknown step $s (topo nccl check bench)"; STATUS=2 ;;
  esac
done
note "done, exit $STATUS; results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit "$STATUS"
