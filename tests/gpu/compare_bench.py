#!/usr/bin/env python3
"""Table of FlashDJL vs the best peer per shape, from JSON-lines files.
    python3 tests/gpu/compare_bench.py ours.jsonl peers.jsonl
"""
import json
import sys


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    return rows


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    rows = load(sys.argv[1:])
    key = lambda r: (r["dtype"], r["hd"], bool(r["causal"]), r["L"])
    ours, peers = {}, {}
    for r in rows:
        if r["impl"] == "flashdjl":
            ours[key(r)] = r
        else:
            peers.setdefault(key(r), []).append(r)
    print(f"{'shape':<34} {'ours TF/s':>10} {'best peer':>10} {'peer':<16} {'ratio':>6}")
    for k in sorted(set(ours) | set(peers)):
        dtype, hd, causal, L = k
        shape = f"{dtype} hd{hd} {'causal' if causal else 'full  '} L={L}"
        o = ours.get(k)
        best = max(peers.get(k, []), key=lambda r: r["tflops"], default=None)
        o_tf = f"{o['tflops']:.1f}" if o else "-"
        p_tf = f"{best['tflops']:.1f}" if best else "-"
        ratio = f"{o['tflops'] / best['tflops']:.2f}" if o and best else "-"
        print(f"{shape:<34} {o_tf:>10} {p_tf:>10} {best['impl'] if best else '-':<16} {ratio:>6}")


if __name__ == "__main__":
    main()
