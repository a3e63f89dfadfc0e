#!/usr/bin/env bash
# Builds the FlashDJL forward kernels (flash_fwd.fatbin and the Hopper flash_fwd_sm90.fatbin, loaded
# by the Java launcher and by the harness) and the CUDA check/benchmark harness (flash_check, static cudart).
#   ops/src/test/cuda/build.sh [OUT_DIR]          (default: ops/target/cuda)
# Env: NVCC (default nvcc), NVCC_THREADS (parallel gencode, default 2), KERNEL_ONLY=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
out="${1:-$root/ops/target/cuda}"
nvcc="${NVCC:-nvcc}"
mkdir -p "$out"
src="$root/ops/src/main/cuda/flash_fwd.cu"

gencode=(-gencode arch=compute_80,code=sm_80
         -gencode arch=compute_90a,code=sm_90a
         -gencode arch=compute_80,code=compute_80)

start=$(date +%s)
# -Xptxas -v report goes to ptxas.txt (registers / spills / smem per kernel)
"$nvcc" --fatbin -std=c++17 -O3 --use_fast_math --threads "${NVCC_THREADS:-2}" "${gencode[@]}" \
  -Xptxas -v -o "$out/flash_fwd.fatbin" "$src" 2> "$out/ptxas.txt" || { cat "$out/ptxas.txt"; exit 1; }
echo "flash_fwd.fatbin: $(stat -c %s "$out/flash_fwd.fatbin") bytes in $(( $(date +%s) - start )) s ($out/ptxas.txt)"
# Hopper wgmma kernels: sm_90a SASS only (loaded only on compute capability 9.0 devices)
start90=$(date +%s)
"$nvcc" --fatbin -std=c++17 -O3 --use_fast_math -gencode arch=compute_90a,code=sm_90a \
  -Xptxas -v -o "$out/flash_fwd_sm90.fatbin" "$root/ops/src/main/cuda/flash_fwd_sm90.cu" \
  2> "$out/ptxas_sm90.txt" || { cat "$out/ptxas_sm90.txt"; exit 1; }
if grep -q "C751[0-9]" "$out/ptxas_sm90.txt"; then
  echo "WARNING: ptxas serialized / patched wgmma (see $out/ptxas_sm90.txt)"; fi
mid=$(date +%s)
echo "flash_fwd_sm90.fatbin: $(stat -c %s "$out/flash_fwd_sm90.fatbin") bytes in $((mid - start90)) s ($out/ptxas_sm90.txt)"

if [[ "${KERNEL_ONLY:-0}" != "1" ]]; then
  # host-only harness: kernels come from the fatbin through the driver API (no -lcuda needed)
  "$nvcc" -std=c++17 -O3 -cudart static -o "$out/flash_check" "$here/flash_check.cu" -lpthread
  echo "flash_check built in $(( $(date +%s) - mid )) s"
fi
