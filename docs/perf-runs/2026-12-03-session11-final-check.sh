#!/usr/bin/env bash
# session 11 call 5 (short device budget): the final tree's bundle: Java GPU suite with DJL's JNI (the launcher runs
# <kernel>_persistent up to cfg[4] query blocks per head), then flash_check --check on its product fatbin
# .devcarry/ (ignored; carried to the device): bundle.txz = `tests/gpu/bundle.sh -q -o`, then
#   tar cf - -C bundle/flashdjl-gpu --exclude=lib/tokenizers-0.36.0.jar . | xz -T2 -6 > .devcarry/bundle.txz;
# fc3.xz = nvcc -std=c++17 -O3 -cudart static -o fc ops/src/test/cuda/flash_check.cu -lpthread, xz -9;
# libdjl_torch.so.xz = xz -9 of ../shared/gpu/djl-pytorch-jni/libdjl_torch.so. Run from the repository root.
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc3.xz > /tmp/fc && chmod +x /tmp/fc
xz -dc $T/libdjl_torch.so.xz > /tmp/libdjl_torch.so
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/suite timeout 100 /tmp/b/run-gpu.sh --tests-only > /tmp/suite.log 2>&1; echo "suite rc=$?"
grep -E "tests (successful|failed|aborted|found|skipped)" /tmp/suite.log | tr -s ' ' > $OUT/suite-summary.txt; cat $OUT/suite-summary.txt | tr '\n' ' '; echo
grep -B2 -A12 "\[X\]" /tmp/suite.log | head -30; grep -A1 "hopperPersistent" /tmp/suite.log | head -2
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
for a in "" "--persistent-blocks 0"; do n=$(echo "x$a" | tr -d ' -')
  timeout 40 /tmp/fc --check --kernels sm90 --fatbin-dir /tmp/fb $a > $OUT/check-$n.txt 2>&1; echo "check [$a] rc=$? $(tail -1 $OUT/check-$n.txt)"; grep -m5 FAIL $OUT/check-$n.txt
done
