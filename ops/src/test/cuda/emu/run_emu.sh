#!/usr/bin/env bash
# Builds and runs the CPU emulation test of the kernels (no GPU, no nvcc needed: g++ + CUDA headers).
#   ops/src/test/cuda/emu/run_emu.sh [OUT_DIR] [name filter]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../../.." && pwd)"
out="${1:-$root/ops/target/cuda}"
mkdir -p "$out"
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
g++ -std=c++17 -O2 -w -pthread -I"$cuda_inc" -I"$root/ops/src/main/cuda" \
  -o "$out/flash_emu_test" "$here/flash_emu_test.cpp"
"$out/flash_emu_test" "${2:-}"
