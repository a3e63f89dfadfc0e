#!/usr/bin/env bash
# Run 91 (session 19): (1) session 18's prepared ALiBi side-tile patch for the kernels without the tensor-core key term
# (docs/perf-runs/2026-12-04-session18-alibi-side-fma.patch applied; base = the tree's flash_fwd_sm90 a0e8c0b4 and
# paged_prefill_sm90 5a7f030b): flash_check --check, --bench-general --hd 256 burst twice interleaved, the Java GPU
# suite over the candidate bundle; (2) decode_bench --read-probe (a read-only kernel over the decode shapes' K / V bytes,
# timed as the decode rows: the ceiling of the decode bars under the benchmark's method) and the decode rows themselves
# (the tree's paged_decode.cu) in the same process family.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
xz -dc $T/decode_bench.xz > /tmp/decode_bench && chmod +x /tmp/decode_bench
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base.txz -C /tmp/base
md5sum /tmp/{base,cand}/*sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
timeout 60 /tmp/decode_bench --read-probe --reps 30 > $OUT/readprobe.jsonl 2> $OUT/readprobe.err; echo "probe rc=$? at ${SECONDS}s"
timeout 90 /tmp/decode_bench --reps 50 --loop 20 > $OUT/decode.jsonl 2> $OUT/decode.err; echo "decode rc=$? at ${SECONDS}s"
timeout 120 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand > /tmp/check.txt 2>&1
echo "check cand rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl base cand
BENCH_ARGS="--hd 256" bench_general burst $OUT/general.jsonl cand base; echo "burst at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
python3 - $OUT/readprobe.jsonl $OUT/decode.jsonl <<'PY'
import json, sys
for f in sys.argv[1:]:
    for line in open(f):
        if line.startswith('{'):
            r = json.loads(line)
            print({k: r[k] for k in r if k in ('impl', 'tag', 'bytes', 'ctas_per_sm', 'in_flight', 'batch', 'L', 'splits', 'ms', 'pct_copy', 'pct_copy_loop', 'ok')})
PY
gpu_suite /tmp/b /tmp/libdjl_torch.so
