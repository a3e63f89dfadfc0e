#!/usr/bin/env bash
# CPU benchmark of the math and online backends (issue: foundation). Prints JMH times, then peak memory.
#   tests/bench/run-cpu-bench.sh [jmh args...]   e.g. -p seq=1024 for a quick run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mvn -q -B -DskipTests package -pl tests -am
cp="tests/target/classes:tests/target/lib/*"
jvm=(-Dai.djl.offline=true -DDJL_CACHE_DIR="$root/target/djl-cache")
java "${jvm[@]}" -cp "$cp" org.openjdk.jmh.Main AttentionBench -rf json -rff target/jmh-attention.json "$@"
echo "== interleaved A/B (min of 6 rounds, one JVM) =="
for ab in "1024 false 8" "1024 true 8" "4096 false 8" "4096 true 8"; do
  java "${jvm[@]}" -cp "$cp" org.flashdjl.tests.bench.AttentionAB $ab
done
echo "== peak extra memory (fresh process per probe) =="
for probe in "online 4096 8 128 false" "math 4096 8 128 false" "online 16384 1 128 true" "math 16384 1 128 true" \
             "online 32768 1 128 true"; do
  java "${jvm[@]}" -Xmx1g -cp "$cp" org.flashdjl.tests.bench.MemoryProbe $probe
done
