#!/usr/bin/env python3
"""Error model of the softcap walk's tier reference (flash_fwd_sm90_body.cuh, tier_ref_limit), session 27.

The cap reference (session 25, docs/perf-runs/2026-12-05-session25-softcap-cap-ref-error.py) takes m = cap_l2 - shift
for a whole row when 2 cap_l2 fits P's type (half: softcap <= 10). Past that (half softcap 30 / 50), a warp whose key
tiles all have |u| <= L (u = scale q.k / softcap; L one of the walk's tier limits 0.45 / 0.25 / 0.11) has every capped
score within [-L cap_l2, L cap_l2] (tanh(u) <= |u|), so m = L cap_l2 - shift, shift = max(0, 2 L cap_l2 - E), holds
for the same reason while the warp stays within L. The kernel picks the largest L with 2 L cap_l2 - E <= 15 (half
kernels only: bfloat16's cap reference covers caps up to 54.7). The first tile of the warp (16 rows) past L switches to the running max with its stale-max rule,
starting from that m: the rescale factor 2^(m - m_new) takes the P before it along.

The claim: O and the LSE have the running max's error, whether the warp stays within L or leaves it at any tile (in
the benchmark's regime and in real ones). This models one warp (16 rows) over key tiles of 128: P in float32 rounded
to P's type for O += P V, O accumulated in float32, l summed in float32, against float64 on the same rounded V, and
prints each case's largest O error (V in [-1, 1]) and LSE error in units of P's unit roundoff for the running max and
the tier reference, and how many tiles the tier reference held. Negative control: a reference from L where the warp
does not stay within L and the switch is left out (wrong P) must show.

Session 28 (run 128 failed 10 flash_check cases whose logits all lie far below the cap: O off by 0.06-0.09, LSE right):
the switch as first written kept m from the reference, which bounds the scores from above only, so a row whose every
score lies far below it had its P underflow in half (l, summed in float32, kept them). This model's kinds had no such
row. Mended: a row's first running-max tile takes its own max as m, down as well as up, floored at -L cap_l2 where the
row holds a sum from the reference tiles (kernel(mend=True); the kinds "below the tier", "in tier, then below",
"below, then in tier"); the second negative control is the first-written switch on those kinds.
Run: python3 docs/perf-runs/2026-12-05-session27-softcap-tier-ref-error.py
"""
import importlib.util
import os

import numpy as np

# session 25's model of the kernel's online softmax (its per-tile loop, rounding helpers and float64 reference)
_spec = importlib.util.spec_from_file_location(
    "cap_ref_model", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "2026-12-05-session25-softcap-cap-ref-error.py"))
_s25 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_s25)
L2E, TILE, reference, to_type = _s25.L2E, _s25.TILE, _s25.reference, _s25.to_type
ROWS = 16  # one warp's rows: the tier test is over the warp's tile
LIMS = (0.45, 0.25, 0.11)
E_MIN = {"half": 14.0 - 2 ** -6, "bf16": 126.0 - 2 ** -6}
S_MAX = {"half": 15.0, "bf16": 32.0}
U = {"half": 2.0 ** -11, "bf16": 2.0 ** -8}


def tier_limit(dt, cap):
    """The kernel's L (tier_ref_limit), or None."""
    cap_l2 = np.float32(cap * L2E)
    for lim in LIMS:
        if 2 * lim * float(cap_l2) - E_MIN[dt] <= S_MAX[dt]:
            return lim
    return None


def kernel(u, cl2, v, dt, cap_l2, lim, switch=True, mend=True):
    """u: [rows, keys] |u| of each raw score; cl2: capped scores, log2 units (float32); v: [keys, D] in P's type;
    cap_l2: the cap in log2 units; lim: the tier limit L (None: the running max throughout). switch=False: the negative
    control (the reference kept past L). mend=False: the switch as session 27 wrote it (m from the reference, up only).
    Returns O, LSE (nat), tiles under the tier reference."""
    if lim is None:
        o, lse = _s25.kernel(cl2, v, dt, None, False)
        return o, lse, 0
    bound = np.float32(lim * cap_l2)
    ref_m = np.float32(bound - max(np.float32(0), np.float32(2) * bound - np.float32(E_MIN[dt])))
    state = {"tier": True, "held": 0}

    def fixed(t0):  # the warp's first tile past L: the running max from there on, m as it stands
        if state["tier"] and switch and np.float32(np.abs(u[:, t0:t0 + TILE]).max()) > lim:
            state["tier"] = False
        state["held"] += state["tier"]
        return state["tier"]

    o, lse = _s25.kernel(cl2, v, dt, ref_m, False, fixed, -bound if mend else None)
    return o, lse, state["held"]


def logits(rng, kind, cap, lim, keys):
    """The logits (scale q.k, before the cap) of one warp's rows."""
    edge = lim * cap  # |logit| at the tier's limit
    shape = (ROWS, keys)
    if kind == "uniform 0.05":  # the benchmark's softcap 30 row: |u| <= 0.05
        return rng.uniform(-0.05, 0.05, shape) * cap
    if kind == "normal, in tier":  # spread within the tier
        return np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
    if kind == "at both edges":  # every logit at +-L cap: P spans the whole 2^(2 L cap_l2) range
        return np.where(rng.random(shape) < 0.5, -edge, edge) * 0.99999
    if kind == "at -edge, one +edge":  # every P small but one a row at the top
        s = -0.99999 * edge * np.ones(shape)
        s[np.arange(ROWS), rng.integers(0, keys, ROWS)] = 0.99999 * edge
        return s
    if kind == "leaves tier late":  # in the tier, then a tile past it with a large logit (running max from there)
        s = np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
        s[:, keys - TILE:] = 2 * cap * rng.standard_normal((ROWS, TILE))
        return s
    if kind == "leaves tier, peak":  # at -edge, then one key a row at +3 cap on a late tile (rescale by ~2^(L+1) cap_l2)
        s = -0.99999 * edge * np.ones(shape)
        s[np.arange(ROWS), keys - TILE + rng.integers(0, TILE, ROWS)] = 3 * cap
        return s
    if kind == "leaves tier first":  # the first tile past the tier (below the cap), the rest within
        s = np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
        s[:, :TILE] = 0.6 * cap * rng.standard_normal((ROWS, TILE))
        return s
    if kind == "past the cap midway":  # logits of several caps from the middle on (ScoreMod tiles)
        s = np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
        s[:, keys // 2:] = 4 * cap * rng.standard_normal((ROWS, keys - keys // 2))
        return s
    if kind == "below the tier":  # every logit far below -L cap (flash_check's qk shift cases): no tile in the tier
        return -1.5 * cap + 0.3 * cap * rng.standard_normal(shape)
    if kind == "in tier, then below":  # in the tier, then every later logit far below it (the switch's floor)
        s = np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
        s[:, keys // 2:] = -3 * cap + 0.3 * cap * rng.standard_normal((ROWS, keys - keys // 2))
        return s
    if kind == "below, then in tier":  # the first tiles far below the tier (the switch), the rest within it
        s = np.clip(0.3 * edge * rng.standard_normal(shape), -edge, edge)
        s[:, :2 * TILE] = -2 * cap + 0.3 * cap * rng.standard_normal((ROWS, 2 * TILE))
        return s
    raise ValueError(kind)


KINDS = ["uniform 0.05", "normal, in tier", "at both edges", "at -edge, one +edge", "leaves tier late",
         "leaves tier, peak", "leaves tier first", "past the cap midway", "below the tier", "in tier, then below",
         "below, then in tier"]


def case(rng, dt, cap, kind, lim, keys=2048, d=16, switch=True, mend=True):
    s = logits(rng, kind, cap, lim, keys)
    u = np.abs(s / cap)
    c = cap * np.tanh(s / cap)
    cl2 = (c * L2E).astype(np.float32)
    v = to_type(rng.uniform(-1, 1, (keys, d)).astype(np.float32), dt)
    o_ref, lse_ref = reference(c, v.astype(np.float64))
    out = []
    for L in (None, lim):
        o, lse, held = kernel(u, cl2, v, dt, np.float32(cap * L2E), L, switch, mend)
        out.append((np.abs(o - o_ref).max(), np.abs(lse - lse_ref).max(), held))
    return out


def main():
    rng = np.random.default_rng(20261205)
    print("errors in units of P's unit roundoff u (half 2^-11, bfloat16 2^-8); O: max |O - O_ref| with V in [-1, 1];")
    print("LSE: max |LSE - LSE_ref| (natural log); held: key tiles (of 16) under the tier reference")
    print("%-5s %-5s %-5s %-20s | running max: O/u  LSE/u | tier reference: O/u  LSE/u  held" %
          ("type", "cap", "L", "logits"))
    worst = [0.0, 0.0, 0.0, 0.0]
    for dt, caps in (("half", [10.5, 15.0, 22.3, 22.4, 30.0, 40.2, 40.3, 50.0, 91.0]),):
        for cap in caps:
            lim = tier_limit(dt, cap)
            assert lim is not None, (dt, cap)
            for kind in KINDS:
                (o1, l1, _), (o2, l2, held) = case(rng, dt, cap, kind, lim)
                row = [o1 / U[dt], l1 / U[dt], o2 / U[dt], l2 / U[dt]]
                worst = [max(a, b) for a, b in zip(worst, row)]
                print("%-5s %-5g %-5g %-20s |         %7.3f %7.3f |            %7.3f %7.3f  %4d" %
                      ((dt, cap, lim, kind) + tuple(row) + (held,)))
    print("largest: running max O %.3f u, LSE %.3f u; tier reference O %.3f u, LSE %.3f u" % tuple(worst))
    print("limits: half L 0.45 up to softcap %.2f, 0.25 up to %.2f, 0.11 up to %.2f; none past" %
          tuple((S_MAX["half"] + E_MIN["half"]) / (2 * lim * L2E) for lim in LIMS))
    assert tier_limit("half", 92.0) is None and tier_limit("half", 30.0) == 0.25 and tier_limit("half", 50.0) == 0.11
    controls(rng, ["negative control: the tier reference kept past L (no switch to the running max): P of the logits",
                   "past L overflow half or lose the small P"],
             (("half", 30.0, "leaves tier, peak"), ("half", 30.0, "past the cap midway"),
              ("half", 50.0, "leaves tier late")), switch=False)
    controls(rng, ["negative control 2: the switch as first written (session 27: m from the reference, up only) on rows",
                   "far below the tier: their P underflow in half against the reference"],
             (("half", 30.0, "below the tier"), ("half", 50.0, "below the tier"), ("half", 30.0, "in tier, then below")),
             mend=False)


def controls(rng, title, items, **kernel_args):
    """Prints a negative control's rows: (type, cap, kind) cases run with case()'s keyword arguments."""
    for line in title:
        print(line)
    for dt, cap, kind in items:
        lim = tier_limit(dt, cap)
        (o1, l1, _), (o2, l2, held) = case(rng, dt, cap, kind, lim, **kernel_args)
        print("%-5s %-5g %-5g %-20s |         %7.3f %7.3f |            %7.3f %7.3f  %4d" %
              (dt, cap, lim, kind, o1 / U[dt], l1 / U[dt], o2 / U[dt], l2 / U[dt], held))

if __name__ == "__main__":
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        main()
