R=$PWD; mkdir -p /tmp/w && cd /tmp/w && tar xzf $R/.devcarry/ck.tgz && cd ck
./flash_check --check --kernels sm90 --fatbin-dir new > $OUT/check_sm90.txt 2>&1; echo rc=$?; grep -E "^FAIL" $OUT/check_sm90.txt | head; tail -1 $OUT/check_sm90.txt
timeout 200 compute-sanitizer --tool memcheck ./flash_check --check --kernels sm90 --max-work 3e6 --fatbin-dir new > $OUT/memcheck.txt 2>&1; echo rc=$?; tail -2 $OUT/memcheck.txt
for r in 1 2 3; do for b in base new; do ./flash_check --bench-general --kernels sm90 --hd 128 --fatbin-dir $b > $OUT/bg_${b}_$r.jsonl 2>&1; done; done
python3 - <<'PY'
import json,glob,os,collections
d=collections.defaultdict(list)
for f in sorted(glob.glob(os.environ['OUT']+'/bg_*.jsonl')):
    b=os.path.basename(f).split('_')[1]
    for l in open(f):
        if l.startswith('{'):
            j=json.loads(l); d[(j['case'],b)].append(j['ms'])
cases=[]
for (c,b) in d:
    if c not in cases: cases.append(c)
for c in cases:
    print('%-36s base %s  new %s'%(c, ' '.join('%.4f'%x for x in d[(c,'base')]), ' '.join('%.4f'%x for x in d[(c,'new')])))
PY
