#!/usr/bin/env bash
# Prepared in session 24 (no GPU was lent that session); the first GPU call of a later session runs it, as run 125.
# The softmax's row sum on the tensor cores (flash_fwd_sm90_body.cuh, kTcRowSum / FLASHDJL_TC_ROWSUM): each k16 step
# of O += P V also runs an m64n8k16 wgmma of P against a 16 x 8 tile of ones, so the score pass loses its FADD a
# score (64 a thread and key tile). SASS of the hd 128 general kernel (cuobjdump 12.4, build machine): the softcap 30
# walk's softmax block 358 -> 290 instructions, the plain walk's 287 -> 215, every walk -64 to -72; ptxas spills of
# the hd 128 general kernel 40 / 56 -> 88 / 144 B (four Q descriptors reloaded by each S issue: 4 LDL.64 a tile).
#   tc1 = FLASHDJL_TC_ROWSUM=1: the half general / positioned kernels (dense and paged prefill)
#   tc2 = FLASHDJL_TC_ROWSUM=2: every half kernel (plain, causal, packed, causal_alibi, persistent forms too)
#   base = main's product fatbins (FLASHDJL_TC_ROWSUM=0: SASS identical to run 124's 9459c928)
# What decides: tc1 is taken when flash_check --check passes (326 cases; the LSE check is 1e-3) and the softcap /
# ALiBi rows of --bench-general rise with no row below base by more than ~1 %; tc2 when, in addition, the plain /
# causal fp16 rows of --bench hold (those kernels wait on their GEMMs, session 17: the eight m64n8k16 steps, 1/16 of
# the P V GEMM's tensor work, may cost them). Then: set FLASHDJL_TC_ROWSUM's default, rebuild, run the Java GPU suite
# over the bundle with both Hopper fatbins swapped in (perf_run_lib.sh gpu_suite), and memcheck.
#
# The carried pack .devcarry/fa49.txz (ignored; ~8 MB), built on the build machine from this tree (~20 min, 2 cores):
#   F="nvcc -fatbin -O3 -std=c++17 --threads 0 -gencode arch=compute_90a,code=sm_90a -ftz=true -Iops/src/main/cuda"
#   for m in 1 2; do mkdir -p /tmp/fa49/tc$m; for k in flash_fwd_sm90 paged_prefill_sm90; do
#     $F -DFLASHDJL_TC_ROWSUM=$m -o /tmp/fa49/tc$m/$k.fatbin ops/src/main/cuda/$k.cu; done; done
#   mkdir -p /tmp/fa49/base && cp ops/target/classes/org/flashdjl/ops/cuda/{flash_fwd,flash_fwd_sm90,paged_prefill_sm90}.fatbin /tmp/fa49/base/
#   nvcc -std=c++17 -O3 -cudart static -o /tmp/fa49/flash_check ops/src/test/cuda/flash_check.cu -lpthread
#   tar cJf .devcarry/fa49.txz -C /tmp/fa49 .
# Device call (~7 min; carry [".devcarry/fa49.txz"]):
#   bash docs/perf-runs/2026-12-05-session24-next-tc-rowsum.sh
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/fa && tar xJf "$T/fa49.txz" -C /tmp/fa
for v in tc1 tc2; do cp /tmp/fa/base/flash_fwd.fatbin /tmp/fa/$v/; done
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum /tmp/fa/base/* /tmp/fa/tc1/* /tmp/fa/tc2/*
for v in tc1 tc2; do
  timeout 120 /tmp/fa/flash_check --check --kernels sm90 --fatbin-dir /tmp/fa/$v > "$OUT/check-$v.txt" 2>&1
  echo "check $v rc=$? $(tail -1 "$OUT/check-$v.txt")"
  grep "^FAIL" "$OUT/check-$v.txt" | head -10
done
cp /tmp/fa/flash_check /tmp/fc && cp -r /tmp/fa/base /tmp/base && cp -r /tmp/fa/tc1 /tmp/tc1 && cp -r /tmp/fa/tc2 /tmp/tc2
bench_general burst "$OUT/general.jsonl" base tc1 tc2
bench_general burst "$OUT/general.jsonl" tc2 tc1 base
python3 tests/gpu/perf_summary.py general "$OUT/general.jsonl" base tc1 tc2
echo "bench-general done at ${SECONDS}s"
# the plain / causal kernels (fp16, hd 64 / 128 / 256, L 1k / 4k / 16k): base and tc2 interleaved, both orders
for v in base tc2 tc2 base; do
  timeout 100 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --dtype fp16 2>/dev/null | grep '^{' |
    sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\"/" >> "$OUT/flash.jsonl"
done
python3 - "$OUT/flash.jsonl" <<'PY'
import collections, json, sys
by = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    j = json.loads(line)
    by[(j["hd"], j["causal"], j["L"])][j["impl"]].append(j["tflops"])
for k, v in sorted(by.items()):
    b, t = max(v.get("base", [0])), max(v.get("tc2", [0]))
    print("hd %3d causal %-5s L %5d  base %s  tc2 %s  tc2/base %.3f" % (k[0], k[1], k[2], v.get("base"), v.get("tc2"), t / b if b else 0))
PY
echo "bench done at ${SECONDS}s"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 70 $CS --tool memcheck --print-limit 10 /tmp/fa/flash_check --check --kernels sm90 --max-work 2000000 --ctas 4 --fatbin-dir /tmp/fa/tc1 > /tmp/san.txt 2>&1
echo "memcheck tc1 rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.txt) $(grep 'passed' /tmp/san.txt | tail -1)" | tee "$OUT/sanitizer.txt"
