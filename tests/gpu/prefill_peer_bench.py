#!/usr/bin/env python3
"""Peers of the paged prefill benchmark (PagedPrefillBench), measured with torch in the same run.

For every shape of ``--ours FILE`` (PagedPrefillBench's JSON lines; shapes with a window are skipped: SDPA has no
windowed causal kernel), torch SDPA on *contiguous* K/V of the same lengths, per backend (cuDNN, flash, efficient):
q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D], bottom-right causal (``is_causal`` when Lq == Lk, else
``torch.nn.attention.bias.causal_lower_right``; a backend that refuses it gets an error row). GQA through
``enable_gqa=True``. TFLOP/s count the same visible pairs as ours (4 * Hq * D per pair), whatever a backend computes.

Prints one JSON object per line on stdout and a table (ours per kernel vs the best peer) on stderr. CUDA events,
warm-up, median of --reps.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right

from decode_peer_bench import timed  # the same CUDA-event timing (median of reps after warm-up)


def pairs(lq, lk):
    """Visible (query, key) pairs of one sequence under bottom-right causality."""
    return lq * (lk - lq) + lq * (lq + 1) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True, help="PagedPrefillBench's JSON lines")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    ours = [json.loads(line) for line in open(args.ours) if line.startswith("{")]
    ours = [r for r in ours if "error" not in r]
    shapes = []
    for r in ours:
        key = (r["dtype"], r["batch"], r["lq"], r["lk"], r["hq"], r["hkv"], r["hd"])
        if r["window"] < 0 and key not in shapes:
            shapes.append(key)
    print(json.dumps({"impl": "torch", "version": torch.__version__, "device": torch.cuda.get_device_name()}))
    best = {}
    for dtype, b, lq, lk, hq, hkv, d in shapes:
        dt = torch.float16 if dtype == "fp16" else torch.bfloat16
        q = torch.randn(b, hq, lq, d, device="cuda", dtype=dt)
        k = torch.randn(b, hkv, lk, d, device="cuda", dtype=dt)
        v = torch.randn(b, hkv, lk, d, device="cuda", dtype=dt)
        flops = 4.0 * hq * d * pairs(lq, lk) * b
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                              ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
            row = {"impl": "torch-sdpa-" + name, "dtype": dtype, "batch": b, "lq": lq, "lk": lk, "hq": hq, "hkv": hkv,
                   "hd": d}
            try:
                if lq == lk:
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                else:
                    mask = causal_lower_right(lq, lk)
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
                with sdpa_kernel([backend]):
                    ms = timed(fn, args.reps, args.warmup)
                row.update(ms=round(ms, 4), tflops=round(flops / (ms * 1e-3) / 1e12, 1))
                key = (dtype, b, lq, lk, hq, hkv, d)
                if row["tflops"] > best.get(key, (0, ""))[0]:
                    best[key] = (row["tflops"], name)
            except Exception as e:  # a backend that refuses the shape or the mask
                row["error"] = str(e).splitlines()[0][:200]
            print(json.dumps(row))
            sys.stdout.flush()
        del q, k, v
        torch.cuda.empty_cache()
    print("%-5s %3s %5s %5s %6s %4s %5s %-45s %8s | %-16s %s" % ("dtype", "B", "Lq", "Lk", "Hq/Hkv", "hd", "page",
          "kernel", "TF/s", "best SDPA TF/s", "ours / best"), file=sys.stderr)
    for r in ours:
        key = (r["dtype"], r["batch"], r["lq"], r["lk"], r["hq"], r["hkv"], r["hd"])
        peer = best.get(key) if r["window"] < 0 else None
        print("%-5s %3d %5d %5d %3d/%-2d %4d %5d %-45s %8.1f | %-16s %s" % (
            r["dtype"], r["batch"], r["lq"], r["lk"], r["hq"], r["hkv"], r["hd"], r["page"],
            r["kernel"] + ("" if r.get("tma", True) else " no-TMA"),
            r["tflops"], "%.1f (%s)" % peer if peer else "-",
            "%.2fx" % (r["tflops"] / peer[0]) if peer else "-"), file=sys.stderr)


if __name__ == "__main__":
    main()
