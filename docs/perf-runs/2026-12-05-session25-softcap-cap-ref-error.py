#!/usr/bin/env python3
"""Error model of the softcap walk's cap reference (kSoftcapCapRef, flash_fwd_sm90_body.cuh), session 25.

With softcap alone every capped score c = cap tanh(s / cap) lies in [-cap, cap], so the online softmax may take the
constant m = cap_l2 - shift (log2 units: cap_l2 = cap log2 e) as its reference for the whole row instead of the running
max: every P = 2^(c' - m) (c' = c log2 e) is then in [2^(shift - 2 cap_l2), 2^shift]. The kernel takes
shift = max(0, 2 cap_l2 - E) with E = 14 (half) / 126 (bfloat16; less 2^-6), so that the smallest P is a normal number
of P's type, when shift <= 15 (half: the largest P below 65504) / 32 (bfloat16): caps up to 10.0 in half, 54.7 in
bfloat16. It rounds P to its input type for O += P V (half or bfloat16) and, with the tensor-core row sum (kTcRowSum,
half only), sums the rounded P; else it sums P in float.

The claim: within those limits O and the LSE have the same error as with the running max, since every P keeps the
type's relative precision. Past them the small P become subnormal or zero (or the large ones overflow) and the error
grows (the negative control below: half at caps 6 / 8 / 10 without the shift, 12 with a shift past 15).

This models one key tile of 128 keys at a time: the running max with the kernel's stale-max rule (kStaleMax = 8:
the max is kept until a tile raises it by more than 8), P in float32 then rounded to the P type, O accumulated in
float32 over V in the P type, l summed in float32 (from float P, or from the rounded P for the row sum), against a
float64 reference on the same (rounded) V. It prints, per case, the largest O error (absolute, V in [-1, 1]) and LSE
error of each reference, and their ratio. Run: python3 docs/perf-runs/2026-12-05-session25-softcap-cap-ref-error.py
"""
import numpy as np

L2E = 1.4426950408889634
TILE = 128
STALE = 8.0


def to_bf16(x):
    """float32 -> bfloat16 (round to nearest even) -> float32."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


def to_type(x, dt):
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32) if dt == "half" else to_bf16(x)


def cap_reference(dt, cap, shift=True):
    """The kernel's m for this cap and P type (kSoftcapCapRef), or None where it keeps the running max.
    shift=False: the reference without the shift (m = cap_l2), for the negative control."""
    cap_l2 = np.float32(cap * L2E)
    e_min, s_max = (14.0, 15.0) if dt == "half" else (126.0, 32.0)
    sh = max(0.0, 2 * float(cap_l2) - (e_min - 2 ** -6)) if shift else 0.0
    return None if sh > s_max else np.float32(cap_l2 - sh)


def kernel(cl2, v, dt, ref_m, tc_sum, fixed=None, soft_floor=None):
    """cl2: [rows, keys] capped scores in log2 units (float32); v: [keys, D] in the P type; ref_m: the cap reference,
    or None for the running max. fixed(t0): whether the key tile at t0 keeps the reference m as it stands (default:
    every tile when ref_m is given; session 27's tier reference passes its own rule). soft_floor (session 28's mend of
    the tier reference): a row's first tile that is not fixed takes its own max as m, down as well as up, floored at
    soft_floor where the row holds a sum. Returns O, LSE (nat)."""
    rows, keys = cl2.shape
    cap_ref = ref_m is not None
    if fixed is None:
        fixed = lambda t0: cap_ref
    m = np.full(rows, ref_m if cap_ref else -np.inf, np.float32)
    soft = np.full(rows, soft_floor is not None)
    l = np.zeros(rows, np.float32)
    o = np.zeros((rows, v.shape[1]), np.float32)
    for t0 in range(0, keys, TILE):
        c = cl2[:, t0:t0 + TILE]
        if not fixed(t0):
            mt = c.max(axis=1)
            m_new = np.maximum(m, mt)
            keep = (m_new - m) <= STALE  # -inf - -inf is nan: False, so the first tile takes its max
            m_new = np.where(keep, m, m_new).astype(np.float32)
            if soft_floor is not None:  # the rows' first running-max tile (no logit here is -inf: mt is finite)
                m_new = np.where(soft, np.where(l > 0, np.maximum(mt, soft_floor), mt), m_new).astype(np.float32)
                soft[:] = False
            corr = np.exp2(m - m_new).astype(np.float32)
            corr[np.isneginf(m)] = 0.0
            o *= corr[:, None]
            l *= corr
            m = m_new
        p = np.exp2((c - m[:, None]).astype(np.float32)).astype(np.float32)
        p[p < 2.0 ** -126] = 0.0  # -ftz
        pr = to_type(p, dt)
        l += (pr if tc_sum else p).sum(axis=1, dtype=np.float32)
        o += (pr @ v[t0:t0 + TILE]).astype(np.float32)
    return o / l[:, None], (m.astype(np.float64) + np.log2(l.astype(np.float64))) / L2E


def reference(c, v):
    """c: [rows, keys] capped scores (nat, float64); v: float64."""
    mx = c.max(axis=1, keepdims=True)
    e = np.exp(c - mx)
    return (e @ v) / e.sum(axis=1, keepdims=True), mx[:, 0] + np.log(e.sum(axis=1))


def logits(rng, kind, cap, rows, keys):
    if kind == "normal 1":
        return rng.standard_normal((rows, keys))
    if kind == "normal 4":
        return 4 * rng.standard_normal((rows, keys))
    if kind == "peaked":  # one key a row at +2 cap, the others near -cap: the largest P ratio softcap allows
        s = -cap + 0.3 * cap * rng.standard_normal((rows, keys))
        s[np.arange(rows), rng.integers(0, keys, rows)] = 2 * cap
        return s
    if kind == "saturated below":  # every logit far below the cap: every P = 2^(-2 cap_l2) (tanh = -1 in float)
        return -60 * cap + rng.standard_normal((rows, keys))
    if kind == "saturated above":  # every logit far above the cap: every P = 2^shift (the largest the reference gives)
        return 60 * cap + rng.standard_normal((rows, keys))
    if kind == "near -cap":  # every capped score near -cap, not saturated: every P small, none 1
        return -1.5 * cap + 0.3 * cap * rng.standard_normal((rows, keys))
    if kind == "below, spread":  # the row's P spread over [2^(-2 cap_l2), ~1]
        return -cap + cap * rng.standard_normal((rows, keys))
    raise ValueError(kind)


def case(rng, dt, cap, kind, tc_sum, ref_m, rows=96, keys=2048, d=16):
    s = logits(rng, kind, cap, rows, keys)
    c = cap * np.tanh(s / cap)
    cl2 = (c * L2E).astype(np.float32)
    v = to_type(rng.uniform(-1, 1, (keys, d)).astype(np.float32), dt)
    o_ref, lse_ref = reference(c, v.astype(np.float64))
    out = []
    for m in (None, ref_m):
        o, lse = kernel(cl2, v, dt, m, tc_sum)
        out.append((np.abs(o - o_ref).max(), np.abs(lse - lse_ref).max()))
    return out


KINDS = ["normal 1", "normal 4", "peaked", "saturated below", "saturated above", "near -cap", "below, spread"]
U = {"half": 2.0 ** -11, "bf16": 2.0 ** -8}  # unit roundoff of P's type


def main():
    rng = np.random.default_rng(20261205)
    print("errors in units of P's unit roundoff u (half 2^-11, bfloat16 2^-8); O: max |O - O_ref| with V in [-1, 1];")
    print("LSE: max |LSE - LSE_ref| (natural log). sum: f32 = P summed in float, tc = the rounded P (kTcRowSum)")
    print("%-5s %-5s %-16s %-4s | running max: O/u  LSE/u | cap reference: O/u  LSE/u" % ("type", "cap", "logits", "sum"))
    worst = [0.0, 0.0, 0.0, 0.0]
    for dt, caps, sums in (("half", [1.0, 2.0, 4.5, 4.85, 7.0, 10.0], [False, True]),
                           ("bf16", [4.5, 30.0, 43.5, 50.0, 54.7], [False])):
        for cap in caps:
            ref_m = cap_reference(dt, cap)
            assert ref_m is not None, (dt, cap)
            for kind in KINDS:
                for tc in sums:
                    (o1, l1), (o2, l2) = case(rng, dt, cap, kind, tc, ref_m)
                    u = U[dt]
                    row = [o1 / u, l1 / u, o2 / u, l2 / u]
                    worst = [max(a, b) for a, b in zip(worst, row)]
                    print("%-5s %-5g %-16s %-4s |         %7.3f %7.3f |           %7.3f %7.3f" %
                          ((dt, cap, kind, "tc" if tc else "f32") + tuple(row)))
    print("largest within the limit: running max O %.3f u, LSE %.3f u; cap reference O %.3f u, LSE %.3f u" %
          tuple(worst))
    print("negative control: half without the shift past 2 cap_l2 = 14 (the small P leave half's normal range), and")
    print("half softcap 12 with the shift it would need (20.6 > 15: the large P overflow half)")
    for cap, shift in ((6.0, False), (8.0, False), (10.0, False), (12.0, True)):
        for kind in ("normal 1", "saturated below", "near -cap") if not shift else ("normal 1", "peaked", "saturated above"):
            cap_l2 = cap * L2E
            m = np.float32(cap_l2 - (max(0.0, 2 * cap_l2 - 14 + 2 ** -6) if shift else 0.0))
            (o1, l1), (o2, l2) = case(rng, "half", cap, kind, True, m)
            u = U["half"]
            print("half  %-5g %-16s tc   |         %7.3f %7.3f |           %7.3f %7.3f" %
                  (cap, kind, o1 / u, l1 / u, o2 / u, l2 / u))


if __name__ == "__main__":
    with np.errstate(divide="ignore", invalid="ignore"):
        main()
