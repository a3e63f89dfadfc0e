#!/usr/bin/env python3
"""PNG charts of the benchmark JSON lines: ours against each peer, per shape (matplotlib; the GPU machines have it).

    python3 bench_charts.py OUT_DIR FILE.jsonl [FILE.jsonl ...]

Rows are recognised by their fields, so any mix of these files works:
  flash forward  FlashBench ("impl": "flashdjl" / "flashdjl-java") and sdpa_bench.py (torch-cudnn, torch-flash, ...):
                 TFLOP/s per (dtype, hd, causal, L)                                  -> flash_<dtype>.png
  paged decode   PagedDecodeBench ("flashdjl-paged") and decode_peer_bench.py (torch-sdpa-*): % of the copy rate
                 per (batch, L)                                                      -> decode.png
  cascade        CascadeBench ("flashdjl-cascade"): speedup over plain paged decode per (batch, prefix)
                                                                                     -> cascade.png
  model          ModelBench ("flashdjl") and hf_model_bench.py ("hf-transformers") with "bench" = prefill /
                 decode / batched                                                    -> model.png
  options        flash_check --bench-general (our kernels, "impl" as the run script tagged it) and flex_bench.py
                 ("torch-flex"): TFLOP/s per (hd, case); our "-own" / "-tc" rows (the kernel FlashDispatch picks
                 for that call) stand for the case they name              -> options_<dtype>.png
Each chart prints the numbers it drew, so the log holds them too.
"""
import json
import os
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    rows = []
    for p in paths:
        if not os.path.isfile(p):
            print(f"skip {p}: not a file", file=sys.stderr)
            continue
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return rows


def bars(path, title, ylabel, groups, series):
    """groups: ordered x labels; series: {impl: {group: value}}."""
    if not groups or not series:
        return
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(16, max(8, 0.6 * len(groups) * len(series))), 4.5))
    for i, (impl, vals) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [vals.get(g, 0) for g in groups]
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"{path}: {title}")
    for impl, vals in series.items():
        print(f"  {impl}: " + ", ".join(f"{g}={v:.4g}" for g, v in vals.items()))


def flash(rows, out):
    by_dtype = OrderedDict()
    for r in rows:
        if "tflops" not in r or "hd" not in r or "error" in r or "case" in r:
            continue
        impl = "flashdjl" if r["impl"].startswith("flashdjl") else r["impl"]
        g = f"hd{r['hd']} {'causal' if r['causal'] else 'full'} L{r['L']}"
        by_dtype.setdefault(r["dtype"], OrderedDict()).setdefault(impl, OrderedDict())[g] = r["tflops"]
    for dtype, series in by_dtype.items():
        groups = list(OrderedDict.fromkeys(g for s in series.values() for g in s))
        bars(os.path.join(out, f"flash_{dtype}.png"), f"flash forward {dtype}: TFLOP/s", "TFLOP/s", groups,
             series)


def options(rows, out):
    # (dtype, impl, group) -> (dispatched, TFLOP/s): the row of the kernel FlashDispatch picks for the call ("-own" /
    # "-tc") wins over the general kernel's row of the same case; of repeated rows, the best
    best = OrderedDict()
    for r in rows:
        if "case" not in r or "tflops" not in r:
            continue
        case, impl = r["case"], r["impl"]
        dispatched = not impl.startswith("torch-") and case.endswith(("-own", "-tc"))
        if dispatched:
            case = case.rsplit("-", 1)[0]
        key = (r["dtype"], impl, f"hd{r['hd']} {case}")
        best[key] = max(best.get(key, (False, 0.0)), (dispatched, r["tflops"]))
    by_dtype = OrderedDict()
    for (dtype, impl, g), (_, tflops) in best.items():
        by_dtype.setdefault(dtype, OrderedDict()).setdefault(impl, OrderedDict())[g] = tflops
    for dtype, series in by_dtype.items():
        # the peer's cases where there is a peer (ours has kernel-variant rows it has no counterpart for)
        peers = [v for impl, v in series.items() if impl.startswith("torch-")]
        groups = list(OrderedDict.fromkeys(g for v in (peers or series.values()) for g in v))
        bars(os.path.join(out, f"options_{dtype}.png"), f"attention options {dtype} (L 4096): TFLOP/s", "TFLOP/s",
             groups, series)


def decode(rows, out):
    series = OrderedDict()
    for r in rows:
        if "pct_copy" not in r or "L" not in r:
            continue
        # the chart's shapes only (fp16, GQA 32/8, hd 128, our page 16); the first row of a shape wins: the
        # benchmark prints the automatic split schedule before the fixed ones
        if (r.get("dtype"), r.get("hq"), r.get("hkv"), r.get("hd"), r.get("page", 16)) != ("fp16", 32, 8, 128, 16):
            continue
        g = f"{r['batch']} x {r['L']}"
        series.setdefault(r["impl"], OrderedDict()).setdefault(g, r["pct_copy"])
    groups = list(OrderedDict.fromkeys(g for s in series.values() for g in s))
    bars(os.path.join(out, "decode.png"), "paged decode (GQA 32/8, hd 128, fp16): % of the copy rate",
         "% of copy", groups, series)


def cascade(rows, out):
    series = OrderedDict()
    for r in rows:
        if r.get("impl") != "flashdjl-cascade":
            continue
        g = f"B{r['batch']} P{r['prefix']}"
        series.setdefault("cascade speedup", OrderedDict()).setdefault(g, r["speedup"])  # first: the default split
    groups = list(OrderedDict.fromkeys(g for s in series.values() for g in s))
    bars(os.path.join(out, "cascade.png"), "shared-prefix cascade: speedup over plain paged decode", "x", groups,
         series)


def model(rows, out):
    metrics = [("prefill", "ms", "prefill 512 (ms, lower is better)"),
               ("decode", "ms_per_token", "decode (ms/token, lower is better)"),
               ("batched", "tokens_per_s", "batched (tokens/s, higher is better)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    printed = False
    for ax, (bench, field, title) in zip(axes, metrics):
        vals = OrderedDict()
        for r in rows:
            if r.get("bench") == bench and field in r:
                label = f"{r['impl']}" + (f" B{r['batch']}" if bench == "batched" else "")
                vals[label] = r[field]
        if vals:
            printed = True
            ax.bar(range(len(vals)), list(vals.values()),
                   color=["tab:blue" if k.startswith("flashdjl") else "tab:orange" for k in vals])
            ax.set_xticks(range(len(vals)))
            ax.set_xticklabels(list(vals.keys()), rotation=30, ha="right", fontsize=8)
            print(f"model {bench}: " + ", ".join(f"{k}={v:.4g}" for k, v in vals.items()))
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if printed:
        fig.suptitle("Llama-3.2-1B-shaped, fp16, one H200: FlashDJL vs Hugging Face transformers (sdpa)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "model.png"), dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rows = load(sys.argv[2:])
    flash(rows, out)
    options(rows, out)
    decode(rows, out)
    cascade(rows, out)
    model([r for r in rows if "bench" in r], out)


if __name__ == "__main__":
    main()
