#!/usr/bin/env bash
# Run 59 (session 13): softcap's polynomial tanh (CapPoly) in the sm90 kernels, checked and timed against the product
# fatbin; FlashAttention-3's hd 64 tile (three consumer warpgroups) against the product and cuDNN; an ncu profile of
# the product's hd 128 non-causal 16k kernel.
# Inputs (.devcarry, carried): bundle.txz (the product = main 97a8a6c), fc.xz (flash_check of this tree: new softcap
# cases), vB.txz (this tree's flash_fwd_sm90 / paged_prefill_sm90 fatbins), wg3bc64.txz / wg3bc128.txz (hd 64 tiles,
# built per docs/perf-runs/2026-12-03-session12-next-hd64.sh's header from this tree).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb /tmp/vB /tmp/wg3bc64 /tmp/wg3bc128 && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
for v in vB wg3bc64 wg3bc128; do cp /tmp/fb/* /tmp/$v/ && tar xJf $T/$v.txz -C /tmp/$v; done
md5sum /tmp/fb/flash_fwd_sm90.fatbin /tmp/vB/*sm90.fatbin
# 1. correctness: every case (the new softcap-past-the-cap ones too) through sm90 (vB) and sm80 (product)
timeout 90 /tmp/fc --check --kernels all --fatbin-dir /tmp/vB > $OUT/check-vB.txt 2>&1; echo "check vB rc=$? $(tail -1 $OUT/check-vB.txt)"
grep -i "softcap" $OUT/check-vB.txt | grep -ci fail | sed 's/^/softcap failures: /'
timeout 80 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/vB --max-work 600000 > /tmp/mc.txt 2>&1; echo "memcheck vB rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1) $(tail -1 /tmp/mc.txt)"
# 2. general vs plain, product (fb) and vB interleaved: burst twice, sustained once
for mode in burst sustained burst; do {
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in fb vB; do
    timeout 100 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
}; done
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
# 3. hd 64: three consumer warpgroups (192 rows; 64 or 128 keys) vs the product, cuDNN in the same call
for v in wg3bc64 wg3bc128; do
  timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/$v > /tmp/chk.txt 2>&1; echo "check $v rc=$? $(tail -1 /tmp/chk.txt)"
done
for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in fb wg3bc64 wg3bc128; do
    timeout 100 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/hd64.jsonl
  done
  timeout 100 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/hd64.jsonl
done
python3 - $OUT/hd64.jsonl <<'PY'
import json,sys,collections,math
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
    g=collections.defaultdict(list)
    for k in sorted({k[1:4] for k in t if k[0]==mode}):
        c=max(t.get((mode,)+k+('cudnn',),[float('nan')]))
        row={v:max(t[(mode,)+k+(v,)]) for v in ('fb','wg3bc64','wg3bc128') if (mode,)+k+(v,) in t}
        print(mode,k,' '.join('%s %.0f (%.3f)'%(v,x,x/c) for v,x in row.items()),'cudnn %.0f'%c)
        for v,x in row.items(): g[v].append(math.log(x/c))
    print(mode,'geomean vs cudnn',' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g.items()))
PY
# 4. where the hd 128 non-causal 16k cycles go (issue 12's weakest bar row): ncu on one launch of the product kernel
A="--bench --kernels sm90 --fatbin-dir /tmp/fb --hd 128 --L 16384 --causal 0 --dtype fp16 --reps 3"
timeout 150 ncu --set full --import-source no --page raw --kernel-name regex:"flash_fwd_sm90_fp16_hd128_plain\$" \
  --launch-skip 3 --launch-count 1 /tmp/fc $A > $OUT/ncu-plain-raw.txt 2>&1; echo "ncu raw rc=$?"
grep -E "smsp__pcsamp_warps_issue_stalled_[a-z_]+ " $OUT/ncu-plain-raw.txt | sort -k3 -n -r | head -14
grep -E "gpu__time_duration.sum|sm__inst_executed.avg.per_cycle_active |sm__pipe_tensor_op_gmma_cycles_active.avg.pct|smsp__issue_active.avg.pct" $OUT/ncu-plain-raw.txt
