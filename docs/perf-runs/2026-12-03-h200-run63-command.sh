#!/usr/bin/env bash
# Run 63 (session 14): softcap's short polynomial on tiles well inside the cap and the hd 64 conditional O rescale
# (this tree = new) against HEAD eb00987's sm90 fatbin (base); FlashAttention-3's 176-key hd 128 non-causal tile
# (v176); paged decode ring depth 3 / 4 / 6 at hd 128 (decode_bench harness, db_s3 = the committed kernel).
# .devcarry: bundle.txz + fc.xz (tests/gpu/devcarry.sh -o of this tree), base.txz, v176.txz (flash_fwd_sm90.fatbin
# each), db.txz (decode_bench builds, ops/src/test/cuda/decode_bench.cu's header, -ftz=true).
# Builds (this machine, CUDA 13.0): base = `nvcc -fatbin -O3 -std=c++17 --threads 0 -gencode arch=compute_90a,code=sm_90a
# -ftz=true` of eb00987's flash_fwd_sm90.cu (md5 ee1337de..., run 62's); v176 = this tree (a43f368) with
# `template <> struct FlashTraitsFor<128, kPlain, false> : Traits<128, 176, 2> {};` and gen_wgmma.py's NS + 176;
# db_sN = paged_decode.cu with `DecodeTraitsFor<128> : DecodeTraits<128, N>` (extern dropped from the _cfg arrays).
# Result: v176 hung (--check timed out at 60 s, its benches too): not pursued.
T=$PWD/.devcarry; END=$((SECONDS + 540))
mkdir -p /tmp/b /tmp/new /tmp/base /tmp/v176 /tmp/db && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc.xz > /tmp/fc && chmod +x /tmp/fc
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/new > /dev/null
for v in base v176; do cp /tmp/new/* /tmp/$v/ && tar xJf $T/$v.txz -C /tmp/$v; done
tar xJf $T/db.txz -C /tmp/db
md5sum /tmp/{new,base,v176}/flash_fwd_sm90.fatbin
for v in new v176; do timeout 60 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/$v > /tmp/chk-$v.txt 2>&1; echo "check $v rc=$? $(tail -1 /tmp/chk-$v.txt)"; grep -m3 FAIL /tmp/chk-$v.txt; done
xz -9 -c /tmp/chk-new.txt > $OUT/check-new.txt.xz
# 1. softcap: bench-general, base / new interleaved, burst twice (hd 128 + 256), sustained once (hd 128)
for mode in burst burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7 --hd 128"
  for v in base new; do
    [ $SECONDS -lt $END ] && timeout 70 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/$v $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  done
done
echo "general done at ${SECONDS}s"
# 2. decode ring depth (two passes of 3 and 6, one of 4)
for s in 3 6 4 3 6; do
  [ $SECONDS -lt $END ] && timeout 60 /tmp/db/db_s$s --tag s$s --reps 30 2>&1 | grep '^{' >> $OUT/decode.jsonl
done
echo "decode done at ${SECONDS}s"
# 3. hd 64 (conditional rescale) and hd 128 non-causal (176 keys) against base and cuDNN, burst; hd 128 sustained too
for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  for hd in 64 128; do
    vs="base new"; [ $hd = 128 ] && vs="base v176"; [ $hd = 64 ] && [ $mode = sustained ] && continue
    for v in $vs; do
      [ $SECONDS -lt $END ] && timeout 60 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/$v --hd $hd $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"$v\",\"mode\":\"$mode\"/" >> $OUT/flash.jsonl
    done
    [ $SECONDS -lt $END ] && timeout 60 python3 tests/gpu/sdpa_bench.py --backends torch-cudnn --hd $hd $a 2>/dev/null | grep '^{' | sed "s/\"impl\": \"torch-cudnn\"/\"impl\": \"cudnn\", \"mode\": \"$mode\"/" >> $OUT/flash.jsonl
  done
done
echo "flash done at ${SECONDS}s"
python3 - $OUT <<'PY'
import json,sys,collections,math,os
o=sys.argv[1]
t=collections.defaultdict(list)
for l in open(o+'/general.jsonl'):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'],j['impl'])].append(j['tflops'])
for mode in ('burst','sustained'):
  for hd in (128,256):
    if (mode,hd,'plain','base') not in t: continue
    base={v:max(t[(mode,hd,'plain',v)]) for v in ('base','new')}; cb={v:max(t[(mode,hd,'causal',v)]) for v in ('base','new')}
    for case in sorted({k[2] for k in t if k[0]==mode and k[1]==hd}):
      ref = cb if 'causal' in case else base
      print(mode, hd, case.ljust(34), ' '.join('%s %.0f (%.2f)'%(v,max(t[(mode,hd,case,v)]),max(t[(mode,hd,case,v)])/ref[v]) for v in ('base','new') if (mode,hd,case,v) in t))
d=collections.defaultdict(list)
for l in open(o+'/decode.jsonl'):
    j=json.loads(l); d[(j['batch'],j['L'],j['splits'])].append('%s %.1f%s'%(j['tag'],j['pct_copy'] if 'pct_copy' in j else -1,'' if j.get('ok',True) else ' BAD'))
for k in sorted(d): print('decode',k,' | '.join(d[k]))
if os.path.exists(o+'/flash.jsonl'):
  t=collections.defaultdict(list)
  for l in open(o+'/flash.jsonl'):
    j=json.loads(l); t[(j['mode'],j['hd'],j['dtype'],j['causal'],j['L'],j['impl'])].append(j['tflops'])
  for mode in ('burst','sustained'):
    g=collections.defaultdict(lambda: collections.defaultdict(list))
    for k in sorted({k[1:5] for k in t if k[0]==mode}):
        c=max(t.get((mode,)+k+('cudnn',),[float('nan')]))
        row={v:max(t[(mode,)+k+(v,)]) for v in ('base','new','v176') if (mode,)+k+(v,) in t}
        print(mode,k,' '.join('%s %.0f (%.3f)'%(v,x,x/c) for v,x in row.items()),'cudnn %.0f'%c)
        for v,x in row.items(): g[(k[0],k[2])][v].append(math.log(x/c))
    for hk in sorted(g): print(mode,'hd %d causal %s'%hk,'geomean vs cudnn',' '.join('%s %.3f'%(v,math.exp(sum(x)/len(x))) for v,x in g[hk].items()))
PY
echo "end at ${SECONDS}s"
