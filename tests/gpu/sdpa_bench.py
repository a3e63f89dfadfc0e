#!/usr/bin/env python3
"""Peer baselines for the FlashDJL forward kernels: torch SDPA backends on the benchmark shapes.

Same shapes and JSON-lines format as `flash_check --bench` (impl = torch-flash / torch-cudnn /
torch-efficient). Tensors are bhsd, batch*L = 16384 tokens, heads = 2048 / hd.
    python3 tests/gpu/sdpa_bench.py [--quick] [--hd D] [--backends torch-cudnn,...] [--reps N] [--idle-ms I]
        [--warm-ms W] [--seconds S] > peers.jsonl   (pacing: as flash_check --bench's options of the same names)
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = [
    ("torch-flash", SDPBackend.FLASH_ATTENTION),
    ("torch-cudnn", SDPBackend.CUDNN_ATTENTION),
    ("torch-efficient", SDPBackend.EFFICIENT_ATTENTION),
]


def time_ms(fn, sets, warmup=3, reps=20, idle_ms=0, warm_ms=0, seconds=0.0):
    """Median ms of `reps` calls, each between two CUDA events. The H200 holds its top clock for about a second of
    full load, then its power cap lowers it (docs/PERF.md, run 56), so the pacing matches flash_check --bench's:
    idle_ms of idle GPU before the shape (a burst from rest), warm_ms of untimed back-to-back calls, and timed calls
    spanning about `seconds` (the power-capped steady state) instead of `reps`."""
    if idle_ms > 0:
        torch.cuda.synchronize()
        time.sleep(idle_ms / 1e3)
    for i in range(warmup):
        fn(*sets[i % len(sets)])
    torch.cuda.synchronize()
    if warm_ms > 0 or seconds > 0:
        t0, n = time.perf_counter(), 0
        while True:
            for _ in range(4):
                fn(*sets[n % len(sets)])
                n += 1
            torch.cuda.synchronize()
            if (time.perf_counter() - t0) * 1e3 >= warm_ms:
                break
        if seconds > 0:
            per_call_ms = (time.perf_counter() - t0) * 1e3 / n
            reps = int(min(1e6, max(20, seconds * 1e3 / per_call_ms)))
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
    ap.add_argument("--reps", type=int, default=20, help="timed calls per shape")
    ap.add_argument("--idle-ms", type=int, default=0, help="idle GPU before each shape (a burst from rest)")
    ap.add_argument("--warm-ms", type=int, default=0, help="untimed back-to-back calls before timing")
    ap.add_argument("--seconds", type=float, default=0.0, help="timed calls span about this long (overrides --reps)")
    ap.add_argument("--hd", type=int, default=0, help="only this head dim")
    args = ap.parse_args()
    if args.reps < 1 or args.idle_ms < 0 or args.warm_ms < 0 or args.seconds < 0:
        ap.error("--reps must be >= 1 and --idle-ms / --warm-ms / --seconds >= 0")
    chosen = args.backends.split(",")
    unknown = [b for b in chosen if b not in dict(BACKENDS)]
    if unknown:
        ap.error(f"unknown backend(s) {unknown}; allowed: {[b for b, _ in BACKENDS]}")
    backends = [(b, k) for b, k in BACKENDS if b in chosen]
    dims = [args.hd] if args.hd else [128] if args.quick else [64, 128, 256]
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
                            ms = time_ms(run, sets, reps=args.reps, idle_ms=args.idle_ms,
                                         warm_ms=args.warm_ms, seconds=args.seconds)
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
