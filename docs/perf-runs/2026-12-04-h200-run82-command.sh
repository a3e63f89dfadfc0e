#!/usr/bin/env bash
# Run 82 (session 17): what causal ALiBi's key term costs at hd 128 (issue 12: causal ALiBi 0.84-0.87 of causal in
# burst). Reduced fatbins (fp16 hd 128 kernels only, built from this tree's body): base2 = unedited, nokey = the
# walk's S GEMMs without the ALiBi key term's extra k16 step (the walk's first tile keeps it; scores wrong on every
# other tile: timing only). bench-general --hd 128, burst, two interleaved passes. .devcarry: fc.xz, s17c.txz.
T=$PWD/.devcarry
. tests/gpu/perf_run_lib.sh
export BENCH_ARGS="--hd 128"
mkdir -p /tmp/s && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/s17c.txz -C /tmp && ls /tmp/base2 /tmp/nokey
md5sum /tmp/base2/flash_fwd_sm90.fatbin /tmp/nokey/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
bench_general burst $OUT/general.jsonl base2 nokey; echo "pass 1 at ${SECONDS}s"
bench_general burst $OUT/general.jsonl nokey base2; echo "pass 2 at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base2 nokey
