#!/usr/bin/env bash
# Builds the inputs a session's GPU calls carry (the device tool copies only tracked files plus the ignored paths
# named in its `carry` list) into .devcarry/ at the repository root (ignored by git):
#   bundle.txz          this tree's GPU bundle (tests/gpu/bundle.sh), without the tokenizers jar (the GPU runs do not
#                       need it; the archive must stay under the carry limit)
#   fc.xz               flash_check (ops/src/test/cuda/flash_check.cu), the CUDA harness for kernel checks / benches
#   libdjl_torch.so.xz  DJL's PyTorch JNI built for the GPU machines' torch (../shared/gpu/djl-pytorch-jni), when present:
#                       test infrastructure, never committed
# On the GPU machine, from the repository root:
#   mkdir -p /tmp/b && tar xJf .devcarry/bundle.txz -C /tmp/b && xz -dc .devcarry/fc.xz > /tmp/fc && chmod +x /tmp/fc
#   xz -dc .devcarry/libdjl_torch.so.xz > /tmp/libdjl_torch.so      # then FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so
#   python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb           # the product fatbins, for flash_check --fatbin-dir
#
#   tests/gpu/devcarry.sh [--no-bundle] [--no-fc] [extra bundle.sh arguments, e.g. -o]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUTDIR="$ROOT/.devcarry"
BUNDLE=1
FC=1
EXTRA=()
for a in "$@"; do
  case "$a" in
    --no-bundle) BUNDLE=0 ;;
    --no-fc) FC=0 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) EXTRA+=("$a") ;;
  esac
done
mkdir -p "$OUTDIR"
if [ "$BUNDLE" = 1 ]; then
  "$ROOT/tests/gpu/bundle.sh" -q ${EXTRA[@]+"${EXTRA[@]}"}
  tar cf - -C "$ROOT/bundle/flashdjl-gpu" --exclude=lib/tokenizers-0.36.0.jar . | xz -T2 -6 > "$OUTDIR/bundle.txz"
  echo "devcarry: bundle.txz $(du -h "$OUTDIR/bundle.txz" | cut -f1)"
fi
if [ "$FC" = 1 ]; then
  command -v nvcc >/dev/null || { echo "devcarry: nvcc not on the PATH (needed for flash_check; --no-fc skips it)" >&2; exit 2; }
  nvcc -std=c++17 -O3 -cudart static -o "$OUTDIR/fc" "$ROOT/ops/src/test/cuda/flash_check.cu" -lpthread
  xz -9 -f "$OUTDIR/fc"
  echo "devcarry: fc.xz $(du -h "$OUTDIR/fc.xz" | cut -f1)"
fi
JNI="$ROOT/../shared/gpu/djl-pytorch-jni/libdjl_torch.so"
if [ -f "$JNI" ]; then
  xz -9 -c "$JNI" > "$OUTDIR/libdjl_torch.so.xz"
  echo "devcarry: libdjl_torch.so.xz $(du -h "$OUTDIR/libdjl_torch.so.xz" | cut -f1)"
fi
echo "devcarry: carry [\".devcarry\"] with the device call"
