#!/usr/bin/env bash
# Run 59 (session 13): softcap's polynomial tanh (CapPoly) in the sm90 kernels, checked and timed against the product
# fatbin; then an ncu profile of the product's hd 128 non-causal 16k kernel.
# Inputs (.devcarry, carried): bundle.txz (the product = main 97a8a6c), fc.xz (flash_check of this tree: new softcap
# cases), vB.txz (this tree's flash_fwd_sm90 / paged_prefill_sm90 fatbins).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb /tmp/vB && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
for v in vB; do cp /tmp/fb/* /tmp/$v/ && tar xJf $T/$v.txz -C /tmp/$v; done
md5sum /tmp/fb/flash_fwd_sm90.fatbin /tmp/vB/*sm90.fatbin
# 1. correctness: every case (the new softcap-past-the-cap ones too) through sm90 (vB) and sm80 (product)
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/vB > $OUT/check-vB.txt 2>&1; echo "check vB rc=$? $(tail -1 $OUT/check-vB.txt)"
grep -i "softcap" $OUT/check-vB.txt | grep -ci fail | sed 's/^/softcap failures: /'
timeout 120 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/vB --max-work 2000000 > /tmp/mc.txt 2>&1; echo "memcheck vB rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"
# 2. general vs plain, product (fb) and vB interleaved, both pacings, twice
for r in 1 2; do for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in fb vB; do
    timeout 100 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
done; done
python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
  for hd in (128,256):
    base={v:max(t[(mode,hd,'plain',v)]) for v in ('fb','vB')}; cb={v:max(t[(mode,hd,'causal',v)]) for v in ('fb','vB')}
    for case in sorted({k[2] for k in t if k[0]==mode and k[1]==hd}):
      ref = cb if case.startswith('causal') or 'causal' in case else base
      print(mode, hd, case.ljust(36), ' '.join('%s %.0f (%.2f)'%(v,max(t[(mode,hd,case,v)]),max(t[(mode,hd,case,v)])/ref[v]) for v in ('fb','vB')))
PY
# 3. where the hd 128 non-causal 16k cycles go (issue 12's weakest bar row): ncu on one launch of the product kernel
A="--bench --kernels sm90 --fatbin-dir /tmp/fb --hd 128 --L 16384 --causal 0 --dtype fp16 --reps 3"
timeout 150 ncu --set full --import-source no --page raw --kernel-name regex:"flash_fwd_sm90_fp16_hd128_plain\$" \
  --launch-skip 3 --launch-count 1 /tmp/fc $A > $OUT/ncu-plain-raw.txt 2>&1; echo "ncu raw rc=$?"
grep -E "smsp__pcsamp_warps_issue_stalled_[a-z_]+ " $OUT/ncu-plain-raw.txt | sort -k3 -n -r | head -14
grep -E "gpu__time_duration.sum|sm__inst_executed.avg.per_cycle_active |sm__pipe_tensor_op_gmma_cycles_active.avg.pct|smsp__issue_active.avg.pct" $OUT/ncu-plain-raw.txt
timeout 150 ncu --set full --import-source no --page source --print-source sass --kernel-name regex:"flash_fwd_sm90_fp16_hd128_plain\$" \
  --launch-skip 3 --launch-count 1 /tmp/fc $A > /tmp/sass.txt 2>&1; echo "ncu sass rc=$?"; xz -9 -c /tmp/sass.txt > $OUT/ncu-plain-sass.txt.xz
