#!/usr/bin/env bash
# Puts cuobjdump and nvdisasm (CUDA 12.4, from Debian's non-free nvidia-cuda-toolkit package) on a build machine
# that has nvcc but not them, so that a kernel's SASS can be read without a GPU (they disassemble the sm_90a cubins
# that nvcc 13 writes). Nothing is installed: the package is downloaded once (87 MB, checked against its sha256) and
# the two programs are extracted into the cache folder.
#   tests/gpu/sass_tools.sh            # prints the folder that holds bin/cuobjdump and bin/nvdisasm
#   CUOBJDUMP="$(tests/gpu/sass_tools.sh)/bin/cuobjdump"
#   "$CUOBJDUMP" -sass -fun flash_fwd_sm90_fp16_hd128_general flash_fwd_sm90.fatbin > k.sass
#   python3 tests/gpu/sass_blocks.py k.sass                    # what each softmax block of the kernel spends
# FLASHDJL_SASS_TOOLS sets the cache folder (default ~/.cache/flashdjl-sass-tools).
set -euo pipefail
DIR="${FLASHDJL_SASS_TOOLS:-$HOME/.cache/flashdjl-sass-tools}"
DEB=nvidia-cuda-toolkit_12.4.131~12.4.1-2_amd64.deb
URL="http://deb.debian.org/debian/pool/non-free/n/nvidia-cuda-toolkit/$DEB"
SHA=cd5fe85aee38d108b315f408a688641478f2402622a10c677478eb7a6c4e5319
if [ ! -x "$DIR/bin/cuobjdump" ] || [ ! -x "$DIR/bin/nvdisasm" ]; then
  mkdir -p "$DIR"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL -o "$tmp/$DEB" "$URL" || { echo "sass_tools: could not download $URL" >&2; exit 1; }
  echo "$SHA  $tmp/$DEB" | sha256sum -c --quiet - || { echo "sass_tools: $DEB does not match its sha256" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "$tmp/$DEB" | tar -x -C "$tmp" ./usr/bin/cuobjdump ./usr/bin/nvdisasm
  mkdir -p "$DIR/bin"
  mv "$tmp/usr/bin/cuobjdump" "$tmp/usr/bin/nvdisasm" "$DIR/bin/"
fi
echo "$DIR"
