#!/usr/bin/env bash
# session 12 call 2: measure first, on the rows short of cuDNN at long work (hd 128 non-causal 16k, hd 256 causal 4k):
# (1) SM clock / power / throttle reasons sampled every 50 ms while each side runs ~3 s of back-to-back launches of one
# shape (ours: flash_check --bench --reps N on the bundle's fatbin; cuDNN: torch 2.11 SDPA in a loop);
# (2) ncu --set full on one launch of each (ours and cuDNN's kernel), same shapes.
# .devcarry: bundle.txz (this tree's bundle), fc5.xz (flash_check with --L / --causal / --dtype / --reps).
T=$PWD/.devcarry
mkdir -p /tmp/b /tmp/fb && tar xJf $T/bundle.txz -C /tmp/b && xz -dc $T/fc5.xz > /tmp/fc && chmod +x /tmp/fc
python3 -c "
import zipfile
z=zipfile.ZipFile('/tmp/b/lib/flashdjl-ops-0.1.0-SNAPSHOT.jar')
for n in z.namelist():
    if n.endswith('.fatbin'): open('/tmp/fb/'+n.split('/')[-1],'wb').write(z.read(n))
"
cat > /tmp/loop.py <<'PY'
import sys, time, torch, torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
hd, L, causal, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
b, h = 16384 // L, 2048 // hd
q, k, v = (torch.empty((b, h, L, hd), device="cuda", dtype=torch.float16).uniform_(-1, 1) for _ in range(3))
with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
    for _ in range(3): F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.cuda.synchronize(); t = time.time()
    for _ in range(n): F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.cuda.synchronize(); dt = (time.time() - t) / n
fl = 4.0 * b * h * L * L * hd / (2 if causal else 1)
print(f"cudnn hd{hd} L{L} causal={causal}: {dt*1e3:.4f} ms/call {fl/dt/1e12:.1f} TFLOP/s over {n} calls")
PY
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,power.limit,temperature.gpu --format=csv,noheader
smi() { nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv,noheader -lms 50 > $OUT/smi-$1.csv & SMI=$!; }
summ() { kill $SMI; sleep 0.3; python3 - $OUT/smi-$1.csv $1 <<'PY'
import sys
rows=[l.split(', ') for l in open(sys.argv[1]) if l.strip()]
busy=[r for r in rows if float(r[3].split()[0])>200]
if not busy: print(sys.argv[2],'no busy samples'); sys.exit()
f=lambda i: sum(float(r[i].split()[0]) for r in busy)/len(busy)
print('%s: %d busy samples (>200 W) of %d: SM clock mean %.0f MHz (min %s max %s), power %.0f W, temp %.0f C, reasons %s'%(sys.argv[2],len(busy),len(rows),f(1),min(int(r[1].split()[0]) for r in busy),max(int(r[1].split()[0]) for r in busy),f(3),f(4),sorted(set(r[5].strip() for r in busy))))
PY
}
for s in "128 16384 0 800" "256 4096 1 20000"; do set -- $s
  smi ours-$1-$2; /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/fb --hd $1 --L $2 --causal $3 --dtype fp16 --reps $4 2>/dev/null | grep '^{'; summ ours-$1-$2
  smi cudnn-$1-$2; python3 /tmp/loop.py $1 $2 $3 $4; summ cudnn-$1-$2
done
for s in "128 16384 0 plain" "256 4096 1 causal"; do set -- $s
  timeout 120 ncu --set full --import-source no --kernel-name regex:"flash_fwd_sm90_fp16_hd$1_$4\$" --launch-skip 3 --launch-count 1 /tmp/fc --bench --kernels sm90 --fatbin-dir /tmp/fb --hd $1 --L $2 --causal $3 --dtype fp16 --reps 3 > $OUT/ncu-ours-hd$1-$2-$4.txt 2>&1; echo "ncu ours hd$1 rc=$? $(grep -c 'Section:' $OUT/ncu-ours-hd$1-$2-$4.txt) sections"
  timeout 120 ncu --set full --import-source no --kernel-name regex:"sdpa|fmha|flash|fprop|attn|attention" --launch-skip 2 --launch-count 1 python3 /tmp/loop.py $1 $2 $3 3 > $OUT/ncu-cudnn-hd$1-$2-$4.txt 2>&1; echo "ncu cudnn hd$1 rc=$? $(grep -c 'Section:' $OUT/ncu-cudnn-hd$1-$2-$4.txt) sections"
  grep -q "Section:" $OUT/ncu-cudnn-hd$1-$2-$4.txt || timeout 60 ncu --section LaunchStats --launch-skip 6 --launch-count 4 python3 /tmp/loop.py $1 $2 $3 3 2>&1 | grep -E "^  [a-zA-Z_].*\(|Grid Size|Block Size" | head -12
done
for f in $OUT/ncu-*.txt; do echo "== $f"; grep -E "^  [a-zA-Z_0-9]+.*\([0-9]+, [0-9]+, [0-9]+\)|SM Frequency|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Shared Memory Configuration Size|Dynamic Shared|Grid Size|Block Size|Executed Ipc A|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|L2 Hit Rate" $f | head -22; done
