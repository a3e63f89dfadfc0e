#!/usr/bin/env bash
# Run 77 (session 17): where softcap's time goes, and what a decode launch costs around its work.
# (1) SASS of the hd 128 fp16 plain / general kernels (the bundle's flash_fwd_sm90.fatbin, md5 7bd18af6).
# (2) Session 16's prepared ncu profile (docs/perf-runs/2026-12-03-session16-next-softcap-profile.sh).
# (3) Attribution variants of the hd 128 general kernel (reduced fatbins: fp16 hd 128 kernels only, built from this
#     tree's body with one edit each; results deliberately wrong where noted, timing only): base (unedited),
#     norange (no per-score range test: every softcap-30 tile takes the degree-5 tier, as it does anyway),
#     lin (the degree-5 tier's polynomial replaced by its linear term: wrong scores), both. bench-general --hd 128,
#     burst, interleaved, two passes.
# (4) decode_bench --loop 20: the per-launch time with events around each launch (the benchmark's) and with 20
#     launches back to back between one pair of events, and an empty kernel's time on the same grid both ways.
# .devcarry: bundle.txz + fc.xz (tests/gpu/devcarry.sh), s17a.txz (the four reduced fatbins + decode_bench built
# with the product's flags from ops/src/test/cuda/decode_bench.cu over paged_decode.cu).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/s && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc && tar xJf $T/s17a.txz -C /tmp/s
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
for v in base norange lin both; do mkdir -p /tmp/v_$v && cp /tmp/fb/* /tmp/v_$v/ && cp /tmp/s/$v/flash_fwd_sm90.fatbin /tmp/v_$v/; done
md5sum /tmp/fb/flash_fwd_sm90.fatbin /tmp/v_*/flash_fwd_sm90.fatbin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/gpu.txt
for k in plain general; do cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_$k /tmp/fb/flash_fwd_sm90.fatbin | xz -6 > $OUT/sass-hd128-$k.txt.xz; done
cuobjdump -sass -fun flash_fwd_sm90_fp16_hd128_general /tmp/v_lin/flash_fwd_sm90.fatbin | xz -6 > $OUT/sass-hd128-general-lin.txt.xz
ls -la $OUT; echo "sass at ${SECONDS}s"
# (4) decode first (short)
/tmp/s/db --loop 20 --tag loop > $OUT/decode.jsonl 2>$OUT/decode.err; echo "decode rc=$? at ${SECONDS}s"
grep -o '"batch":[0-9]*,"L":[0-9]*,"splits":[0-9]*\|"ms":[0-9.]*\|"pct_copy":[0-9.]*\|"ok":[a-z]*\|"ms_loop":[0-9.]*\|"pct_copy_loop":[0-9.]*\|"ms_empty":[0-9.]*\|"ms_empty_loop":[0-9.]*' $OUT/decode.jsonl | paste -sd' ' | sed 's/"batch"/\n"batch"/g'; echo
# (3) attribution, burst, two interleaved passes
for pass in 1 2; do for v in base norange lin both; do
  timeout 60 /tmp/fc --bench-general --kernels sm90 --hd 128 --fatbin-dir /tmp/v_$v --idle-ms 800 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"burst\"/" >> $OUT/general.jsonl
done; done; echo "attribution at ${SECONDS}s"
python3 tests/gpu/perf_summary.py general $OUT/general.jsonl base norange lin both
# (2) the profile
bash docs/perf-runs/2026-12-03-session16-next-softcap-profile.sh 2>&1 | tail -60
echo "end at ${SECONDS}s"
