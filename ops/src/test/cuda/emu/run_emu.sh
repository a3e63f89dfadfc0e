#!/usr/bin/env bash
# Builds and runs the CPU emulation tests of the kernels (no GPU, no nvcc needed: g++ + CUDA headers):
# flash_fwd.cu (flash_emu_test) and paged_decode.cu (decode_emu_test).
#   ops/src/test/cuda/emu/run_emu.sh [OUT_DIR] [name filter]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../../.." && pwd)"
out="${1:-$root/ops/target/cuda}"
mkdir -p "$out"
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
for t in flash_emu_test decode_emu_test; do
  g++ -std=c++17 -O2 -w -pthread -I"$cuda_inc" -I"$root/ops/src/main/cuda" -o "$out/$t" "$here/$t.cpp"
done
rc=0
"$out/flash_emu_test" "${2:-}" || rc=1
"$out/decode_emu_test" "${2:-}" || rc=1
exit $rc
