#!/usr/bin/env bash
# session 12 call 4: issue 12's "general within 10 % of plain" rows with the clock state controlled (flash_check
# --bench-general, fp16 L 4096, hd 128 / 256: burst = --idle-ms 800, sustained = --warm-ms 800 --seconds 0.7, twice
# each, interleaved), then run-gpu.sh --bench-only --quick end to end (FlashBench and sdpa_bench.py both with
# FLASHDJL_BENCH_IDLE_MS, compare_bench.py). .devcarry: bundle.txz (the bundle of run 57), fc7.xz (flash_check of this tree).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc7.xz > /tmp/fc && chmod +x /tmp/fc
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader; md5sum /tmp/fb/flash_fwd_sm90.fatbin
for r in 1 2; do for mode in burst sustained; do
  [ $mode = burst ] && a="--idle-ms 800" || a="--warm-ms 800 --seconds 0.7"
  timeout 120 /tmp/fc --bench-general --kernels sm90 --fatbin-dir /tmp/fb $a 2>/dev/null | grep '^{' | sed "s/\"impl\":\"flashdjl-sm90\"/\"impl\":\"ours\",\"mode\":\"$mode\"/" >> $OUT/general.jsonl
  echo "general $mode rep $r done at ${SECONDS}s"
done; done
python3 - $OUT/general.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    j=json.loads(l); t[(j['mode'],j['hd'],j['case'])].append(j['tflops'])
for mode in ('burst','sustained'):
    for hd in (128,256):
        base={'plain':max(t[(mode,hd,'plain')]),'causal':max(t[(mode,hd,'causal')])}
        for (m,h,c),v in sorted(t.items()):
            if m!=mode or h!=hd: continue
            ref=base['causal'] if 'causal' in c else base['plain']
            print(mode,'hd',hd,'%-34s'%c,'/'.join('%.0f'%x for x in v),'best/%s %.3f'%('causal' if 'causal' in c else 'plain',max(v)/ref))
PY
cd /tmp/b && OUT=/tmp/rg timeout 240 ./run-gpu.sh --bench-only --quick > /tmp/rg.log 2>&1; echo "run-gpu --bench-only --quick rc=$? at ${SECONDS}s"
grep -E "idle|FAILED|ok$" /tmp/rg.log | head -12; cat /tmp/rg/bench-compare.txt 2>/dev/null | head -30; cp /tmp/rg/bench-*.jsonl /tmp/rg/bench-compare.txt $OUT/ 2>/dev/null
echo "end at ${SECONDS}s"
