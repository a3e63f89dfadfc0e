R=$PWD; mkdir -p /tmp/b /tmp/c && xz -dc .devcarry/bundle.txz | tar xf - -C /tmp/b
xz -dc .devcarry/libdjl_torch.so.xz > /tmp/libdjl_torch.so
xz -dc .devcarry/ck2.txz | tar xf - -C /tmp/c && cd /tmp/c/ck2 && mkdir -p new base
python3 -c "
import zipfile;z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
[open('new/'+n.split('/')[-1],'wb').write(z.read(n)) for n in z.namelist() if n.endswith('.fatbin')]"
cp new/flash_fwd.fatbin base/ && cp base_sm90.fatbin base/flash_fwd_sm90.fatbin
./flash_check --check --kernels sm90 --fatbin-dir new > $OUT/check_sm90_product.txt 2>&1; tail -1 $OUT/check_sm90_product.txt
for r in 1 2; do for b in $( [ $r = 2 ] && echo "new base" || echo "base new"); do ./flash_check --bench-general --kernels sm90 --hd 256 --fatbin-dir $b > $OUT/bg256_${b}_$r.jsonl 2>&1; done; done
cat > /tmp/sum.py <<'PY'
import json,glob,os,collections
d=collections.defaultdict(list)
for f in sorted(glob.glob(os.environ['OUT']+'/bg256_*.jsonl')):
    b=os.path.basename(f).split('_')[1]
    for l in open(f):
        if l.startswith('{'):
            j=json.loads(l); d[(j['case'],b)].append(j['ms'])
for c in dict.fromkeys(k[0] for k in d):
    print('%-34s base %s  new %s'%(c, ' '.join('%.4f'%x for x in d[(c,'base')]), ' '.join('%.4f'%x for x in d[(c,'new')])))
PY
python3 /tmp/sum.py
cd /tmp/b && FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=$OUT/suite timeout 470 ./run-gpu.sh --tests-only > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|skipped|found)|exit [0-9]+ in" $OUT/suite.log
grep -E "^\s+.*✘|MethodSource.*FAIL|\[X\]" $OUT/suite.log | head -20
python3 /tmp/sum.py
