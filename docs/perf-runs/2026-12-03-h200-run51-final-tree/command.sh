R=$PWD; mkdir -p /tmp/b /tmp/c && xz -dc .devcarry/bundle.txz | tar xf - -C /tmp/b
xz -dc .devcarry/ck2.txz | tar xf - -C /tmp/c && cd /tmp/c/ck2 && mkdir -p new base
python3 -c "
import zipfile;z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
[open('new/'+n.split('/')[-1],'wb').write(z.read(n)) for n in z.namelist() if n.endswith('.fatbin')]"
cp new/flash_fwd.fatbin base/ && cp base_sm90.fatbin base/flash_fwd_sm90.fatbin
./flash_check --check --kernels sm90 --fatbin-dir new > $OUT/check_sm90_product.txt 2>&1; tail -1 $OUT/check_sm90_product.txt
timeout 150 compute-sanitizer --tool memcheck ./flash_check --check --kernels sm90 --max-work 3e6 --fatbin-dir new > $OUT/memcheck.txt 2>&1; tail -1 $OUT/memcheck.txt
for r in 1 2 3; do for b in $( [ $r = 2 ] && echo "new base" || echo "base new"); do ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir $b > $OUT/bg_${b}_$r.jsonl 2>&1; done; done
cat > /tmp/sum.py <<'PY'
import json,glob,os,collections
d=collections.defaultdict(list)
for f in sorted(glob.glob(os.environ['OUT']+'/bg_*.jsonl')):
    b=os.path.basename(f).split('_')[1]
    for l in open(f):
        if l.startswith('{'):
            j=json.loads(l); d[(j['case'],b)].append(j['ms'])
for c in dict.fromkeys(k[0] for k in d):
    print('%-34s base %s  new %s'%(c, ' '.join('%.4f'%x for x in d[(c,'base')]), ' '.join('%.4f'%x for x in d[(c,'new')])))
PY
python3 /tmp/sum.py
cd /tmp/b && OUT=$OUT/suite timeout 150 ./run-gpu.sh --tests-only > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|aborted)|exit [0-9]+ in" $OUT/suite.log
OUT=$OUT/paged timeout 330 ./run-gpu.sh --paged > $OUT/paged.log 2>&1; echo "paged rc=$?"
grep -E "tests (successful|failed)|exit [0-9]+ in" $OUT/paged.log; grep -A10 "PagedPrefillBench on" $OUT/paged.log | head -11; grep -E "decode|copy" $OUT/paged.log | grep -E "%" | head -8
python3 /tmp/sum.py
