#!/usr/bin/env python3
"""Peer baselines for the FlashDJL forward kernels: torch SDPA backends on the benchmark shapes.

Same shapes and JSON-lines format as `flash_check --bench` (impl = torch-flash / torch-cudnn /
torch-efficient). Tensors are bhsd, batch*L = 16384 tokens, heads = 2048 / hd.
    python3 tests/gpu/sdpa_bench.py [--quick] [--backends torch-cudnn,...] > peers.jsonl
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = [
    ("torch-flash", SDPBackend.FLASH_ATTENTION),
    ("torch-cudnn", SDPBackend.CUDNN_ATTENTION),
    ("torch-efficient", SDPBackend.EFFICIENT_ATTENTION),
]


def time_ms(fn, sets, warmup=3, reps=20):
    for i in range(warmup):
        fn(*sets[i % len(sets)])
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        args = sets[i % len(sets)]
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="hd128 only")
    ap.add_argument("--backends", default=",".join(b for b, _ in BACKENDS),
                    help="comma-separated impl names to time (default: all)")
    args = ap.parse_args()
    chosen = args.backends.split(",")
    unknown = [b for b in chosen if b not in dict(BACKENDS)]
    if unknown:
        ap.error(f"unknown backend(s) {unknown}; allowed: {[b for b, _ in BACKENDS]}")
    backends = [(b, k) for b, k in BACKENDS if b in chosen]
    dims = [128] if args.quick else [64, 128, 256]
    torch.manual_seed(0)
    for dtype_name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        for hd in dims:
            for causal in (False, True):
                for L in (1024, 4096, 16384):
                    batch, heads = 16384 // L, 2048 // hd
                    shape = (batch, heads, L, hd)
                    sets = [tuple(torch.empty(shape, device="cuda", dtype=dtype).uniform_(-1, 1)
                                  for _ in range(3)) for _ in range(2)]
                    flops = 4.0 * batch * heads * L * L * hd / (2 if causal else 1)
                    for impl, backend in backends:
                        def run(q, k, v, backend=backend):
                            with sdpa_kernel([backend]):
                                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        try:
                            ms = time_ms(run, sets)
                        except Exception as e:  # backend refuses the shape / dtype / GPU
                            print(f"# skip {impl} {dtype_name} hd{hd} causal={causal} L={L}: "
                                  f"{type(e).__name__}: {str(e).splitlines()[0][:160]}",
                                  file=sys.stderr)
                            continue
                        print(json.dumps({"impl": impl, "dtype": dtype_name, "hd": hd,
                                          "causal": causal, "L": L, "batch": batch,
                                          "heads": heads, "ms": round(ms, 4),
                                          "tflops": round(flops / (ms * 1e-3) / 1e12, 1)}),
                              flush=True)
                    del sets
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
