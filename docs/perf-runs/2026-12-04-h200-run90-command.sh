#!/usr/bin/env bash
# Run 90 (session 18, the last ~4 min of its device time): ALiBi side tiles in the kernels without the tensor-core key
# term (hd 256 general / positioned, paged prefill): on a key tile wholly left or right of the warpgroup's rows the
# bias is r - 8 side nslope_l2 j (r per row and column pair), two FMAs a score instead of ScoreMod::at's three
# (FADD, FMUL, FFMA). base = 915ed2f's fatbins (flash_fwd_sm90 a0e8c0b4), cand = this tree's bundle. flash_check
# --check over cand; bench-general --hd 256 burst base / cand; the Java GPU suite over the bundle.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
export BENCH_ARGS="--hd 256"
mkdir -p /tmp/b /tmp/cand /tmp/base && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/cand > /dev/null
cp /tmp/cand/* /tmp/base/ && tar xJf $T/base90.txz -C /tmp/base
md5sum /tmp/{base,cand}/*sm90.fatbin
timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/cand > /tmp/check.txt 2>&1
echo "check cand rc=$? $(tail -1 /tmp/check.txt) at ${SECONDS}s"; grep -m5 FAIL /tmp/check.txt
xz -9 -c /tmp/check.txt > $OUT/check.txt.xz
bench_general burst $OUT/general.jsonl base cand; echo "burst at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base cand
gpu_suite /tmp/b /tmp/libdjl_torch.so
