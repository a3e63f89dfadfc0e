#!/usr/bin/env bash
# Prepared in sessions 26 / 27 (no GPU); run as run 128 in session 28 on an H100 (the call got no H200). Results:
# docs/PERF.md, "runs 128-129". Two candidates, both patches out of main at the time:
#   new  = docs/perf-runs/2026-12-05-session26-softcap-kernels.patch: softcap with the causal mask or alone on the
#          causal / plain pipelines (flash_fwd_sm90_*_hd{64,128}_{causal_softcap,softcap} and their _persistent forms:
#          the causal / plain kernel's walk and persistent form with the general kernel's softcap walks). The
#          session-26 build of it: flash_fwd_sm90.fatbin md5 22e52f28 (session 27 rebased it onto 31dbf77 and rebuilt
#          it: the same 22e52f28).
#   tier = new + docs/perf-runs/2026-12-05-session27-softcap-tier-ref.patch: the softcap walk's tier reference (half
#          caps past the cap reference, 10-91: a constant softmax reference while a warp's tiles stay within a tier,
#          then the running max; kernel-notes "Session 27"). Affects fp16 softcap 30 rows (general and -own), every hd.
# flash_check --check over tier (its cases run the general and the new kernels; six new tier-reference cases whose
# warps switch to the running max mid-row), also with 4 CTAs a launch; over new only if tier fails. Then
# --bench-general burst, fp16 every hd, new / tier interleaved in both orders, and bf16 hd 128 (the tier reference
# does not apply to bf16 caps <= 54.7: a noise reference). Rows "general-softcap*" / "causal-softcap*" are the general
# kernel, "...-own" the new kernels, in the same pass (ratios to the plain / causal kernel of the same pass).
# Take new if the checks pass and its -own rows beat the general rows; tier if it passes and its softcap 30 rows beat
# new's (both orders). compute-sanitizer memcheck / racecheck run in run 129 with the Java suite.
# Packs: `bash docs/perf-runs/2026-12-05-run128-129-packs.sh` on the build machine (a new checkout has no .devcarry/;
# ~24 min on 2 cores) builds .devcarry/fa52.txz (flash_check from the patch-1+2 tree, new/ = the patch-1 tree's
# flash_fwd_sm90 / paged_prefill_sm90 / flash_fwd fatbins, tier/ = the patch-1+2 flash_fwd_sm90 + the same other two)
# and checks the fatbins' md5 sums (22e52f28 / 173464ee / 9ba0e04d / 67d8d484).
# carry [".devcarry/fa52.txz"]
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf "$T/fa52.txz" -C /tmp/fa
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/new/* /tmp/fa/tier/* /tmp/fa/flash_check
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/new /tmp/new && cp -r /tmp/fa/tier /tmp/tier
timeout 150 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/tier > "$OUT/check-tier.txt" 2>&1
echo "check tier rc=$? $(tail -1 "$OUT/check-tier.txt")"
grep "^FAIL" "$OUT/check-tier.txt" | head -10
if grep -q "^FAIL" "$OUT/check-tier.txt"; then
  timeout 150 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/new > "$OUT/check-new.txt" 2>&1
  echo "check new rc=$? $(tail -1 "$OUT/check-new.txt")"
  grep "^FAIL" "$OUT/check-new.txt" | head -10
fi
timeout 150 /tmp/fc --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/tier > "$OUT/check-tier-ctas4.txt" 2>&1
echo "check tier --ctas 4 rc=$? $(tail -1 "$OUT/check-tier-ctas4.txt")"
grep "^FAIL" "$OUT/check-tier-ctas4.txt" | head -10
echo "tier-reference cases: $(grep -c 'keys \[' "$OUT/check-tier.txt") lines, causal_softcap lines: $(grep -c causal_softcap "$OUT/check-tier.txt")"
echo "checks done at ${SECONDS}s"
bench_general burst "$OUT/general.jsonl" new tier
bench_general burst "$OUT/general.jsonl" tier new
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" new tier
echo "bench fp16 done at ${SECONDS}s"
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" new tier
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" new tier
echo "all done at ${SECONDS}s"
