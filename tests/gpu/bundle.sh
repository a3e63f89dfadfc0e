#!/usr/bin/env bash
# Builds bundle/flashdjl-gpu.tgz: everything the GPU suite and benchmark need on a CUDA machine that has a
# driver and python3 with torch but no Java and no Maven: a jlink'd JRE, the jars (ops with the fatbin, the ops
# test-jar, the tests jars, JCuda + its driver native, JNA, DJL api and its deps, slf4j + log4j, the JUnit console
# launcher), the python benchmark scripts and run-gpu.sh. Unpack it anywhere and run ./run-gpu.sh (see docs/GPU.md).
#
# Usage: tests/gpu/bundle.sh [--allow-no-kernels] [--no-clean] [extra Maven args, e.g. -o, -q, -Dnvcc=/path/nvcc]
#   --allow-no-kernels  build even when the ops jar has no flash_fwd.fatbin (a dry run of the packaging)
#   --no-clean          skip "mvn clean" (faster; may ship stale classes or fatbins)
# Env:   BUNDLE_JDK=/path/to/jdk   the JDK whose jlink makes the JRE (default: Temurin 25 if installed, as its
#                                  runtime needs only glibc 2.17; else JAVA_HOME; else the jlink on PATH)
#        MVN=mvn                   the Maven command
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ALLOW_NO_KERNELS=0
CLEAN=clean
MVN_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --allow-no-kernels) ALLOW_NO_KERNELS=1 ;;
    --no-clean) CLEAN= ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) MVN_ARGS+=("$arg") ;;
  esac
done
MAX_BYTES=$((60 * 1024 * 1024))
# java.xml: log4j's XML config; jdk.zipfs: JUnit's classpath scan of jars; java.desktop: log4j-core needs java.beans
# (its AWT/font/sound natives are left out of the image: nothing here loads them); java.naming: log4j warns without it;
# jdk.management: the serving config's memory probe (com.sun.management); jdk.jfr: profiles of the benchmarks
# (JAVA_OPTS=-XX:StartFlightRecording=...).
MODULES=java.base,java.logging,java.management,jdk.management,jdk.jfr,java.naming,jdk.unsupported,java.xml,jdk.zipfs,java.desktop
EXCLUDE='**/lib/libawt*.so,**/lib/libfontmanager.so,**/lib/libfreetype.so,**/lib/libjavajpeg.so,**/lib/libjawt.so'
EXCLUDE+=',**/lib/libjsound.so,**/lib/liblcms.so,**/lib/libmlib_image.so,**/lib/libsplashscreen.so'
OUT_DIR="$ROOT/bundle"
STAGE="$OUT_DIR/flashdjl-gpu"
TGZ="$OUT_DIR/flashdjl-gpu.tgz"
start=$(date +%s)

echo "== 1/5 Maven build ($CLEAN package -DskipTests -Pgpu-bundle)"
# shellcheck disable=SC2086
"${MVN:-mvn}" -B -DskipTests -Pgpu-bundle ${MVN_ARGS[@]+"${MVN_ARGS[@]}"} $CLEAN package

VERSION="$(sed -n 's:^  <version>\(.*\)</version>:\1:p' pom.xml | head -n 1)"
OPS_JAR="ops/target/flashdjl-ops-$VERSION.jar"
FATBIN_ENTRY=org/flashdjl/ops/cuda/flash_fwd.fatbin
if unzip -l "$OPS_JAR" "$FATBIN_ENTRY" >/dev/null 2>&1; then
  FATBIN_BYTES="$(unzip -l "$OPS_JAR" "$FATBIN_ENTRY" | awk 'NR==4 {print $1}')"
  echo "   $OPS_JAR holds $FATBIN_ENTRY ($FATBIN_BYTES bytes)"
elif [ "$ALLOW_NO_KERNELS" = 1 ]; then
  FATBIN_BYTES=0
  echo "   WARNING: $OPS_JAR has no $FATBIN_ENTRY (no nvcc or no ops/src/main/cuda/flash_fwd.cu):" \
       "the bundle's GPU tests will fail with 'kernels missing' on a GPU (--allow-no-kernels)"
else
  echo "ERROR: $OPS_JAR has no $FATBIN_ENTRY: nvcc missing or ops/src/main/cuda/flash_fwd.cu absent." >&2
  echo "       Install nvcc (or pass -Dnvcc=/path/to/nvcc), or use --allow-no-kernels for a dry run." >&2
  exit 1
fi

echo "== 2/5 staging $STAGE"
rm -rf "$STAGE" "$TGZ"
mkdir -p "$STAGE/lib" "$STAGE/junit" "$STAGE/python"
cp tests/target/gpu-bundle/lib/*.jar "$STAGE/lib/"
# (Jars the GPU machine does not need -- PyTorch natives and DJL's CPU JNI, JMH -- are excluded by the gpu-bundle
# profile in tests/pom.xml; DJL's engine jar is in, its JNI comes from FLASHDJL_DJL_JNI.)
cp "tests/target/flashdjl-tests-$VERSION.jar" "tests/target/flashdjl-tests-$VERSION-tests.jar" "$STAGE/lib/"
cp tests/target/gpu-bundle/junit/junit-platform-console-standalone.jar "$STAGE/junit/"
# JCuda's natives jar carries NVRTC, nvPTXCompiler and runtime bindings too (25 MB); only the driver API is used.
for j in "$STAGE"/lib/jcuda-natives-*.jar; do
  zip -q -d "$j" 'lib/libJNvPTXCompiler-*' 'lib/libJNvrtc-*' 'lib/libJCudaRuntime-*' || true
  unzip -l "$j" | grep 'libJCudaDriver-' > /dev/null || { echo "ERROR: $j lost libJCudaDriver" >&2; exit 1; }
done
# DJL's tokenizers jar carries its native library for four platforms (18 MB); the GPU machines are linux-x86_64.
for j in "$STAGE"/lib/tokenizers-*.jar; do
  zip -q -d "$j" 'native/lib/win-*' 'native/lib/osx-*' 'native/lib/linux-aarch64/*' || true
  unzip -l "$j" | grep 'linux-x86_64/cpu/libtokenizers.so' > /dev/null \
    || { echo "ERROR: $j lost linux-x86_64/cpu/libtokenizers.so" >&2; exit 1; }
done
for py in sdpa_bench.py compare_bench.py decode_peer_bench.py prefill_peer_bench.py hf_model_bench.py make_hf_fixtures.py \
    bench_charts.py extract_fatbins.py flex_bench.py; do
  if [ -f "tests/gpu/$py" ]; then
    cp "tests/gpu/$py" "$STAGE/python/"
  else
    echo "   note: tests/gpu/$py not found; run-gpu.sh will skip that step"
  fi
done
cp tests/gpu/run-gpu.sh tests/gpu/run-cp.sh "$STAGE/"
chmod +x "$STAGE/run-gpu.sh" "$STAGE/run-cp.sh"

echo "== 3/5 jlink JRE ($MODULES)"
JDK="${BUNDLE_JDK:-}"
if [ -z "$JDK" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/jlink ]; then JDK=/usr/lib/jvm/temurin-25-jdk-amd64; fi
if [ -z "$JDK" ] && [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/jlink" ]; then JDK="$JAVA_HOME"; fi
if [ -z "$JDK" ]; then JDK="$(dirname "$(dirname "$(readlink -f "$(command -v jlink)")")")"; fi
JDK_FEATURE="$("$JDK/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
if [ "${JDK_FEATURE%%.*}" -ge 21 ]; then COMPRESS=--compress=zip-6; else COMPRESS=--compress=2; fi
echo "   JDK $JDK (Java $JDK_FEATURE)"
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages "$COMPRESS" \
  "--exclude-files=$EXCLUDE" --output "$STAGE/jre"
"$STAGE/jre/bin/java" -version 2>&1 | sed 's/^/   /'

echo "== 4/5 build info"
{
  echo "built:   $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "commit:  $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "branch:  $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
  echo "jre:     $("$STAGE/jre/bin/java" -version 2>&1 | head -n 1) from $JDK, modules $MODULES"
  echo "nvcc:    $( (command -v nvcc >/dev/null && nvcc --version | tail -n 2 | head -n 1) || echo 'not on PATH')"
  echo "fatbin:  $FATBIN_ENTRY $FATBIN_BYTES bytes"
  echo "jars:"
  (cd "$STAGE" && ls -l lib junit | sed 's/^/  /')
} > "$STAGE/BUILD-INFO.txt"

echo "== 5/5 $TGZ"
tar -C "$STAGE" -czf "$TGZ" .
BYTES="$(stat -c %s "$TGZ")"
echo "   $TGZ: $BYTES bytes ($(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1048576}') MiB), limit 60 MiB," \
  "built in $(( $(date +%s) - start )) s"
if [ "$BYTES" -ge "$MAX_BYTES" ]; then
  echo "ERROR: the bundle is over 60 MiB" >&2
  exit 1
fi
echo "   run: mkdir -p /tmp/b && tar xzf $TGZ -C /tmp/b && /tmp/b/run-gpu.sh"
