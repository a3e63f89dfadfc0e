#!/usr/bin/env bash
# (Ran in session 13 as part of run 59, perf-runs/2026-12-03-h200-run59-*; the build knobs it names were removed
# when the three-consumer tile became FlashTraitsFor's hd 64 plain / causal tile.)
# For the next session: FlashAttention-3's hd 64 tile (192 query rows on three consumer warpgroups) against the
# product's hd 64 kernels (128 rows, two consumers), with both pacings and cuDNN in the same call. hd 64 is the head
# dim of the Llama-3.2-1B-shaped model and the weakest against cuDNN (0.935x geometric mean, run 57).
# Build on the dev machine first (~3 min each), into .devcarry/ (ignored; carry [".devcarry"]), with
# tests/gpu/devcarry.sh for bundle.txz / fc.xz, and from ops/src/main/cuda:
#   for v in "wg3bc64|-DFLASHDJL_SM90_HD64_WG=3 -DFLASHDJL_SM90_HD64_BC=64" \
#            "wg3bc128|-DFLASHDJL_SM90_HD64_WG=3 -DFLASHDJL_SM90_WG3_REGS_P=32 -DFLASHDJL_SM90_WG3_REGS_C=160"; do
#     n=${v%%|*}; mkdir -p /tmp/$n && nvcc -fatbin -O3 -std=c++17 --threads 0 -gencode arch=compute_90a,code=sm_90a \
#       -ftz=true ${v#*|} -o /tmp/$n/flash_fwd_sm90.fatbin flash_fwd_sm90.cu && tar cJf ../../../../.devcarry/$n.txz -C /tmp/$n .
#   done
# Correctness first (every hd 64 case of --check, also through the persistent form with few CTAs, and memcheck /
# racecheck), then the bench; only the hd 64 rows differ from the product fatbin.
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb /tmp/wg3bc64 /tmp/wg3bc128 && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null
tar xJf $T/wg3bc64.txz -C /tmp/wg3bc64 && tar xJf $T/wg3bc128.txz -C /tmp/wg3bc128
for v in wg3bc64 wg3bc128; do
  for a in "" "--ctas 3" "--persistent-blocks 0"; do
    timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/$v $a > $OUT/check-$v$(echo "$a" | tr -d ' -').txt 2>&1
    echo "check $v [$a] rc=$? $(tail -1 $OUT/check-$v$(echo "$a" | tr -d ' -').txt)"
  done
  timeout 100 compute-sanitizer --tool memcheck /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/$v --ctas 3 --max-work 1000000 > /tmp/mc.txt 2>&1; echo "memcheck $v rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.txt | head -1)"
  timeout 100 compute-sanitizer --tool racecheck --racecheck-report analysis /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/$v --ctas 2 --max-work 300000 > /tmp/rc.txt 2>&1; echo "racecheck $v rc=$? $(grep 'RACECHECK SUMMARY' /tmp/rc.txt | head -1)"
done
for r in 1 2; do for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for v in fb wg3bc64 wg3bc128; do
    timeout 120 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
  done
  timeout 120 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd 64 $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
done; done
python3 - $OUT/flash.jsonl <<'PY'
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
