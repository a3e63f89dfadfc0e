#!/usr/bin/env python3
"""Peers of the paged decode benchmark (PagedDecodeBench), measured with torch in the same run:

* the device copy bandwidth: a large ``y.copy_(x)`` (1 GiB fp16), counting read + write bytes;
* torch SDPA on *contiguous* KV of the same shapes as the paged decode benchmark, per backend (cuDNN first, then
  flash and efficient for context): q [B, Hq, 1, D], k/v [B, Hkv, L, D]. GQA is passed with ``enable_gqa=True``
  when the backend takes it; otherwise k/v are ``repeat_interleave``'d to Hq heads before timing (the row says
  which: ``gqa``: "enable_gqa" or "repeat_interleave"). GB/s counts the same bytes as ours:
  B * L * Hkv * D * 2 (K and V) * 2 bytes, whatever the backend really reads.

Prints one JSON object per line on stdout. With ``--ours FILE`` (PagedDecodeBench's JSON lines) it also prints a
table of ours vs the peers to stderr. CUDA events, warm-up, median of --reps.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [  # (batch, L, Hq, Hkv, D)
    (64, 4096, 32, 8, 128),
    (1, 65536, 32, 8, 128),
    (8, 16384, 32, 8, 128),
]


def timed(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return ms[len(ms) // 2] if reps % 2 else (ms[reps // 2 - 1] + ms[reps // 2]) / 2


def copy_bandwidth(reps):
    n = (1 << 30) // 2
    x = torch.randn(n, device="cuda", dtype=torch.float16)
    y = torch.empty_like(x)
    ms = timed(lambda: y.copy_(x), reps, 3)
    del x, y
    return 2.0 * (1 << 30) / (ms * 1e-3) / 1e9


def sdpa_rows(shape, reps, warmup, copy):
    b, L, hq, hkv, d = shape
    q = torch.randn(b, hq, 1, d, device="cuda", dtype=torch.float16)
    k = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.float16)
    v = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.float16)
    kv_bytes = b * L * hkv * d * 2 * 2
    rows = []
    backends = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    for name, backend in backends:
        row = {"impl": "torch-sdpa-" + name, "dtype": "fp16", "batch": b, "L": L, "hq": hq, "hkv": hkv, "hd": d,
               "torch": torch.__version__}
        done = False
        for gqa in ("enable_gqa", "repeat_interleave"):
            try:
                if gqa == "enable_gqa":
                    kk, vv = k, v
                    fn = lambda: F.scaled_dot_product_attention(q, kk, vv, enable_gqa=True)
                else:
                    kk = k.repeat_interleave(hq // hkv, dim=1)
                    vv = v.repeat_interleave(hq // hkv, dim=1)
                    fn = lambda: F.scaled_dot_product_attention(q, kk, vv)
                with sdpa_kernel([backend]):
                    ms = timed(fn, reps, warmup)
                gbps = kv_bytes / (ms * 1e-3) / 1e9
                row.update({"gqa": gqa, "ms": round(ms, 4), "gbps": round(gbps, 1),
                            "pct_copy": round(100 * gbps / copy, 1)})
                done = True
                break
            except Exception as e:  # backend refuses the shape: try the next GQA form, then report
                row["error_" + gqa] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            finally:
                torch.cuda.synchronize()
        rows.append(row)
        if not done:
            print(f"{name} {shape}: no result ({row})", file=sys.stderr)
    del q, k, v
    torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--ours", help="PagedDecodeBench JSON lines, for the comparison table")
    ap.add_argument("--quick", action="store_true", help="the first two shapes only")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device for torch", file=sys.stderr)
        return 3
    print(f"decode_peer_bench on {torch.cuda.get_device_name()} torch {torch.__version__} "
          f"cudnn {torch.backends.cudnn.version()}", file=sys.stderr)
    copy = copy_bandwidth(args.reps)
    results = [{"impl": "torch-copy", "bytes": 1 << 30, "copy_gbps": round(copy, 1)}]
    for shape in SHAPES[:2] if args.quick else SHAPES:
        results += sdpa_rows(shape, args.reps, args.warmup, copy)
    for r in results:
        print(json.dumps(r))
    sys.stdout.flush()
    if args.ours:
        ours = []
        with open(args.ours) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    ours.append(json.loads(line))
        java_copy = next((r["copy_gbps"] for r in ours if r.get("impl") == "cuMemcpyDtoD"), None)
        print(f"\ncopy bandwidth: torch copy_ {copy:.1f} GB/s, cuMemcpyDtoD {java_copy} GB/s (read + write)",
              file=sys.stderr)
        print(f"{'impl':<24} {'dtype':<5} {'B':>3} {'L':>6} {'Hq/Hkv':>6} {'page':>4} {'splits':>6} {'ms':>8} "
              f"{'GB/s':>8} {'%copy':>6}  note", file=sys.stderr)
        rows = [r for r in ours if r.get("impl") == "flashdjl-paged" and "ms" in r]
        rows += [r for r in results if "ms" in r and r["impl"].startswith("torch-sdpa")]
        for r in rows:
            pct = 100 * r["gbps"] / copy
            note = r.get("gqa", "") or r.get("kernel", "")
            print(f"{r['impl']:<24} {r.get('dtype', ''):<5} {r['batch']:>3} {r['L']:>6} "
                  f"{str(r['hq']) + '/' + str(r['hkv']):>6} {r.get('page', '-'):>4} {r.get('splits', '-'):>6} "
                  f"{r['ms']:>8.4f} {r['gbps']:>8.1f} {pct:>5.1f}%  {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
