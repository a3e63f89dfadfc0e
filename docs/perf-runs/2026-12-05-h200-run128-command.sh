#!/usr/bin/env bash
# Prepared in session 26, which got no GPU: not run yet. First `git apply docs/perf-runs/2026-12-05-session26-softcap-kernels.patch`
# (the kernels, flash_check's cases / rows, the Java dispatch and GPU cases), then `tests/gpu/devcarry.sh -o` and the pack
# below. The session-26 build of the patch: flash_fwd_sm90.fatbin md5 22e52f28.
# Run 128 (session 26): softcap with the causal mask or alone on the causal / plain pipelines
# (flash_fwd_sm90_*_hd{64,128}_{causal_softcap,softcap} and their _persistent forms: the causal / plain kernel's walk
# and persistent form with the general kernel's softcap walks, none of its window / sink / ALiBi machinery).
# flash_check --check over the new fatbin (the softcap-only cases run on both the general and the new kernels), also
# with 4 CTAs a launch (persistent walks over many work tiles), then --bench-general burst: fp16 hd 128 twice, hd 64
# once, bf16 hd 128 once, then compute-sanitizer memcheck over the small cases. Rows "general-softcap*" /
# "causal-softcap*" are the general kernel, "...-own" the new kernels, in the same pass (ratios to the plain / causal
# kernel of the same pass).
# Pack .devcarry/fa51.txz (built on the build machine from this tree's devcarry build):
#   mkdir -p /tmp/fa51/new && cp ops/target/classes/org/flashdjl/ops/cuda/{flash_fwd,flash_fwd_sm90,paged_prefill_sm90}.fatbin /tmp/fa51/new/
#   xz -dc .devcarry/fc.xz > /tmp/fa51/flash_check && chmod +x /tmp/fa51/flash_check
#   tar cJf .devcarry/fa51.txz -C /tmp/fa51 flash_check new
# carry [".devcarry/fa51.txz"]
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf "$T/fa51.txz" -C /tmp/fa
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/new/* /tmp/fa/flash_check
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/new /tmp/new
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/new > "$OUT/check.txt" 2>&1
echo "check rc=$? $(tail -1 "$OUT/check.txt")"
grep "^FAIL" "$OUT/check.txt" | head -10
timeout 150 /tmp/fc --check --kernels sm90 --ctas 4 --fatbin-dir /tmp/new > "$OUT/check-ctas4.txt" 2>&1
echo "check --ctas 4 rc=$? $(tail -1 "$OUT/check-ctas4.txt")"
grep "^FAIL" "$OUT/check-ctas4.txt" | head -10
grep -c "causal_softcap" "$OUT/check.txt"
echo "checks done at ${SECONDS}s"
BENCH_ARGS="--hd 128" bench_general burst "$OUT/general.jsonl" new
BENCH_ARGS="--hd 128" bench_general burst "$OUT/general.jsonl" new
BENCH_ARGS="--hd 64" bench_general burst "$OUT/general.jsonl" new
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" new
echo "bench fp16 done at ${SECONDS}s"
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" new
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" new
echo "bench bf16 done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 90 $CS --tool memcheck --print-limit 10 /tmp/fc --check --kernels sm90 --max-work 2000000 --ctas 4 \
  --fatbin-dir /tmp/new > /tmp/san.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee "$OUT/sanitizer.txt"
echo "all done at ${SECONDS}s"
