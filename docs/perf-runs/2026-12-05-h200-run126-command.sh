#!/usr/bin/env bash
# Run 126 (session 25), after run 125 (PART=1 of 2026-12-05-session24-next-tc-rowsum.sh): there the cap reference
# (tc1fr over tc1f) lifted softcap 1 / 4.5 by 6-15 %, but the tensor-core row sum (tc1f over q1) cost the general rows
# 2-3 % and ALiBi 5 %, for ~1 % on softcap 30. qfr = the Q descriptors at issue + the folded degree-7 tier + the cap
# reference, without the row sum (QDESC 1, TC_ROWSUM 0, FOLD7 1, CAP_REF 1). flash_check --check over qfr, then
# --bench-general burst base / q1 / qfr / tc1fr interleaved, both orders, and bf16 at hd 128 base / qfr (the softcap
# 30 rows take the cap reference there).
# Pack .devcarry/fa50.txz: flash_check (this tree), base / q1 / tc1fr from fa49, qfr built as in fa49's recipe with
# "qfr 0 1 1 1". carry [".devcarry/fa50.txz"].
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf "$T/fa50.txz" -C /tmp/fa
for v in q1 qfr tc1fr; do cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/$v/; done
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/*/*
cp /tmp/fa/flash_check /tmp/fc && for v in base q1 qfr tc1fr; do cp -r /tmp/fa/$v /tmp/$v; done
timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/qfr > "$OUT/check-qfr.txt" 2>&1
echo "check qfr rc=$? $(tail -1 "$OUT/check-qfr.txt")"
grep "^FAIL" "$OUT/check-qfr.txt" | head -10
bench_general burst "$OUT/general.jsonl" base q1 qfr tc1fr
bench_general burst "$OUT/general.jsonl" tc1fr qfr q1 base
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" base q1 qfr tc1fr
echo "bench-general done at ${SECONDS}s"
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" base qfr
BENCH_ARGS="--dtype bf16 --hd 128" bench_general burst "$OUT/general-bf16.jsonl" qfr base
python3 tests/gpu/perf_summary.py general "$OUT/general-bf16.jsonl" base qfr
echo "bench-general bf16 done at ${SECONDS}s"
