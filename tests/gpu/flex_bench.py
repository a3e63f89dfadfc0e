#!/usr/bin/env python3
"""Peer for the general kernel's options: torch FlexAttention (Triton, torch.compile) on flash_check --bench-general's
shapes and cases.

Python's reference stack has no SDPA backend for softcap, ALiBi, sliding windows or sinks; FlexAttention is how a
PyTorch user gets them (score_mod / mask_mod). Same shapes as `flash_check --bench-general` (bhsd, batch 4, L 4096,
heads 2048 / hd, uniform [-1, 1) data, scale 1 / sqrt(hd)), the same case names and TFLOP/s over the visible pairs, and
the same JSON-lines fields (impl = torch-flex, mode = burst), so `tests/gpu/perf_summary.py general` lists both side
by side. FlexAttention is not asked for the log-sum-exp (our kernels always write it): that favours the peer.
Each case's output (sequence 0 of the timed call) is first checked against a float64 reference of the same score /
mask rule (max |error| to stderr; the script stops if a case is off by more than 2e-2: a wrong score_mod is no peer).
    python3 tests/gpu/flex_bench.py [--dtype fp16|bf16] [--hd D] [--cases a,b] [--idle-ms 800] [--reps 20] > flex.jsonl
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdpa_bench import time_ms  # noqa: E402  (the same pacing as the SDPA peers)

# name -> (causal, window_left, sinks, alibi, softcap): flash_check --bench-general's table (kernel-family rows such
# as "-own" / "-tc" compute the same function on another of our kernels, so the peer has one row per function)
CASES = {
    "plain": (False, -1, 0, False, 0.0),
    "general-softcap30": (False, -1, 0, False, 30.0),
    "general-softcap4.5": (False, -1, 0, False, 4.5),
    "general-softcap1": (False, -1, 0, False, 1.0),
    "general-alibi": (False, -1, 0, True, 0.0),
    "causal": (True, -1, 0, False, 0.0),
    "causal-softcap30": (True, -1, 0, False, 30.0),
    "causal-softcap50": (True, -1, 0, False, 50.0),
    "causal-alibi": (True, -1, 0, True, 0.0),
    "general-causal-window1024-sinks4": (True, 1024, 4, False, 0.0),
}


def slopes_for(heads, device):
    """ALiBi slopes of flash_check --bench-general: 2^(-8 (i + 1) / heads)."""
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)], device=device, dtype=torch.float32)


def mods(case, slopes):
    """(score_mod or None, mask_mod or None) of a case, in FlexAttention's signatures (score is scale * q.k)."""
    causal, wl, sinks, alibi, softcap = CASES[case]
    score_mod = None
    if softcap > 0 and alibi:
        raise ValueError("no case combines softcap and ALiBi")
    if softcap > 0:
        def score_mod(score, b, h, q_idx, kv_idx):
            return softcap * torch.tanh(score / softcap)
    elif alibi:
        def score_mod(score, b, h, q_idx, kv_idx):
            return score - slopes[h] * (q_idx - kv_idx).abs()
    mask_mod = None
    if causal and wl >= 0:
        def mask_mod(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & ((q_idx - kv_idx <= wl) | (kv_idx < sinks))
    elif causal:
        def mask_mod(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
    return score_mod, mask_mod


def visible_pairs(case, L):
    causal, wl, sinks, _, _ = CASES[case]
    pairs = 0
    for i in range(L):
        hi = i + 1 if causal else L
        lo = max(0, i - wl) if wl >= 0 else 0
        pairs += (hi - lo) + min(sinks, lo)
    return pairs


def reference(q, k, v, case, slopes, scale):
    """float64 attention with the case's rule: [b, h, L, d]."""
    causal, wl, sinks, alibi, softcap = CASES[case]
    q, k, v = q.double(), k.double(), v.double()
    s = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale
    L = q.shape[2]
    i = torch.arange(L, device=q.device).view(L, 1)
    j = torch.arange(L, device=q.device).view(1, L)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if alibi:
        s = s - slopes.double().view(1, -1, 1, 1) * (i - j).abs()
    visible = torch.ones(L, L, dtype=torch.bool, device=q.device)
    if causal:
        visible &= i >= j
    if wl >= 0:
        visible &= (i - j <= wl) | (j < sinks)
    s = s.masked_fill(~visible, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="fp16", choices=("fp16", "bf16"))
    ap.add_argument("--hd", type=int, default=0, help="only this head dim (default: 128 and 256)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    ap.add_argument("--reps", type=int, default=20, help="timed calls per case")
    ap.add_argument("--idle-ms", type=int, default=800, help="idle GPU before each case (flash_check's burst: 800)")
    args = ap.parse_args()
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; allowed: {list(CASES)}")
    if args.hd not in (0, 64, 128, 256):
        ap.error(f"--hd must be 64, 128 or 256, got {args.hd}")
    if args.reps < 1 or args.idle_ms < 0:
        ap.error("--reps must be >= 1 and --idle-ms >= 0")
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    # one compiled graph per case (score_mod / mask_mod closures): lift dynamo's recompile limit (default 8), past
    # which it would fall back to eager flex_attention, the math path (not the peer's kernel)
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 256)
    flex = torch.compile(flex_attention, dynamic=False)
    print(f"# torch {torch.__version__}, triton {__import__('triton').__version__}, "
          f"{torch.cuda.get_device_name()}", file=sys.stderr)
    g = torch.Generator(device="cuda").manual_seed(99)
    L, batch = 4096, 4
    for hd in ([args.hd] if args.hd else [128, 256]):
        heads = 2048 // hd
        scale = 1.0 / math.sqrt(hd)
        shape = (batch, heads, L, hd)
        q, k, v = (torch.empty(shape, device="cuda", dtype=dtype).uniform_(-1, 1, generator=g) for _ in range(3))
        slopes = slopes_for(heads, "cuda")
        for case in cases:
            score_mod, mask_mod = mods(case, slopes)
            bm = create_block_mask(mask_mod, None, None, L, L, device="cuda") if mask_mod else None

            def run(q, k, v):
                return flex(q, k, v, score_mod=score_mod, block_mask=bm, scale=scale)

            try:
                # correctness first: the first sequence of the first call's output (the compile) against float64
                t0 = time.perf_counter()
                got = run(q, k, v)[:1]
                torch.cuda.synchronize()
                compile_s = time.perf_counter() - t0
                err = (got.double() - reference(q[:1], k[:1], v[:1], case, slopes, scale)).abs().max().item()
                del got
                print(f"# {args.dtype} hd {hd} {case}: max |err| {err:.2e} against float64 (sequence 0); first "
                      f"call (compile) {compile_s:.1f} s", file=sys.stderr)
                if not err <= 2e-2:
                    sys.exit(f"flex_bench: {case} is off by {err:.3e} against the float64 reference: not a peer")
                ms = time_ms(run, [(q, k, v)], reps=args.reps, idle_ms=args.idle_ms)
            except Exception as e:  # e.g. a head dim Triton's shared memory cannot hold
                print(f"# skip {args.dtype} hd {hd} {case}: {type(e).__name__}: {str(e).splitlines()[0][:160]}",
                      file=sys.stderr)
                continue
            pairs = visible_pairs(case, L)
            print(json.dumps({"impl": "torch-flex", "mode": "burst", "case": case, "dtype": args.dtype, "hd": hd,
                              "L": L, "batch": batch, "heads": heads, "visible_pairs": pairs, "ms": round(ms, 4),
                              "tflops": round(4.0 * batch * heads * pairs * hd / (ms * 1e-3) / 1e12, 1)}),
                  flush=True)
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
