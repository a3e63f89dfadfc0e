#!/usr/bin/env bash
# Builds, from a clean checkout of main at da63e0e (before run 128 took session 26's patch in, causal only), every
# pack that runs 128 and 129 as first planned carry (their command scripts,
# 2026-12-05-h100-run128-command.sh / -run129-command.sh, say what each call does). The packs live in .devcarry/,
# which git ignores, and a new session's checkout does not keep ignored files: run this first in the session that
# gets a GPU (no GPU needed; session 28 ran it once: 1427 s on the 2-core build machine, every md5 as below).
#
#   bash docs/perf-runs/2026-12-05-run128-129-packs.sh      # from the repository root
#
# Two scratch worktrees of da63e0e (removed at the end):
#   p1 = da63e0e + 2026-12-05-session26-softcap-kernels.patch   -> "new": GPU bundle (Maven, all fatbins), flash_check
#   p2 = p1 + 2026-12-05-session27-softcap-tier-ref.patch    -> "tier": flash_fwd_sm90.fatbin, flash_check
# Packs (in .devcarry/):
#   fa52.txz            flash_check (p2's: its cases cover both candidates), new/ and tier/ fatbins (run 128)
#   fa52s.txz           flash_check + tier/flash_fwd_sm90.fatbin (run 129 with CAND=tier)
#   bundle.txz          p1's GPU bundle (tests/gpu/devcarry.sh) (run 129)
#   libdjl_torch.so.xz  DJL's PyTorch JNI for the GPU machines' torch, from ../shared/gpu (test infrastructure)
# The md5 sums the builds must give (nvcc 13.0, the pom's flags; the sessions 26 / 27 builds) are checked at the end:
# a different sum means a different toolchain or tree, and the run scripts' expectations no longer hold.
set -euo pipefail
ROOT="$(git rev-parse --show-toplevel)"
cd "$ROOT"
P1=docs/perf-runs/2026-12-05-session26-softcap-kernels.patch
P2=docs/perf-runs/2026-12-05-session27-softcap-tier-ref.patch
W="${PACKS_WORK:-/tmp/packs128}"
OUT="$ROOT/.devcarry"
declare -A WANT=([new/flash_fwd_sm90.fatbin]=22e52f28 [tier/flash_fwd_sm90.fatbin]=173464ee
                 [new/paged_prefill_sm90.fatbin]=9ba0e04d [new/flash_fwd.fatbin]=67d8d484)
command -v nvcc >/dev/null || { echo "packs: nvcc not on the PATH" >&2; exit 2; }
[ -f ../shared/gpu/djl-pytorch-jni/libdjl_torch.so ] || { echo "packs: ../shared/gpu/djl-pytorch-jni missing" >&2; exit 2; }
cleanup() {
  git worktree remove --force "$W/p1" 2>/dev/null || true
  git worktree remove --force "$W/p2" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
rm -rf "$W" && mkdir -p "$W/fa52/new" "$W/fa52/tier" "$W/fa52s/tier" "$OUT"
git worktree add -q --detach "$W/p1" da63e0e
git worktree add -q --detach "$W/p2" da63e0e
git -C "$W/p1" apply "$ROOT/$P1"
git -C "$W/p2" apply "$ROOT/$P1" "$ROOT/$P2"
start=$SECONDS

# tier: only flash_fwd_sm90 differs from new (paged_prefill_sm90 and the sm80 fatbins are the same sources), built
# with the pom's command for *_sm90 sources (ops/pom.xml, profile nvcc); flash_check from the same tree.
SRC="$W/p2/ops/src/main/cuda"
nvcc -fatbin -O3 -std=c++17 --threads 0 -gencode arch=compute_90a,code=sm_90a -ftz=true -I"$SRC" \
  -o "$W/fa52/tier/flash_fwd_sm90.fatbin" "$SRC/flash_fwd_sm90.cu"
nvcc -std=c++17 -O3 -cudart static -o "$W/fa52/flash_check" "$W/p2/ops/src/test/cuda/flash_check.cu" -lpthread
echo "packs: tier fatbin and flash_check built at $((SECONDS - start)) s"

# new: the GPU bundle of p1 (Maven builds every fatbin into the ops jar), its fatbins taken from the build output
(cd "$W/p1" && tests/gpu/devcarry.sh --no-fc)
FB="$W/p1/ops/target/classes/org/flashdjl/ops/cuda"
cp "$FB/flash_fwd_sm90.fatbin" "$FB/paged_prefill_sm90.fatbin" "$FB/flash_fwd.fatbin" "$W/fa52/new/"
cp "$W/fa52/new/paged_prefill_sm90.fatbin" "$W/fa52/new/flash_fwd.fatbin" "$W/fa52/tier/"
cp "$W/p1/.devcarry/bundle.txz" "$OUT/"
xz -9 -c ../shared/gpu/djl-pytorch-jni/libdjl_torch.so > "$OUT/libdjl_torch.so.xz"
echo "packs: bundle built at $((SECONDS - start)) s"

bad=0
for f in "${!WANT[@]}"; do
  got=$(md5sum "$W/fa52/$f" | cut -c1-8)
  if [ "$got" = "${WANT[$f]}" ]; then echo "packs: $f $got ok"; else echo "packs: $f $got, expected ${WANT[$f]}"; bad=1; fi
done
cp "$W/fa52/flash_check" "$W/fa52s/" && cp "$W/fa52/tier/flash_fwd_sm90.fatbin" "$W/fa52s/tier/"
tar cJf "$OUT/fa52.txz" -C "$W/fa52" flash_check new tier
tar cJf "$OUT/fa52s.txz" -C "$W/fa52s" flash_check tier
ls -l "$OUT"
if [ "$bad" = 1 ]; then
  echo "packs: a fatbin differs from the builds the run scripts expect (see above); check nvcc --version (13.0)" >&2
  exit 1
fi
echo "packs: done in $((SECONDS - start)) s; carry as the run 128 / 129 scripts say"
