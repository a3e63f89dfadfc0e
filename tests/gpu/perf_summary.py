#!/usr/bin/env python3
"""One-line-per-shape summaries of a GPU call's benchmark files, for the command scripts in docs/perf-runs/.

    python3 tests/gpu/perf_summary.py decode  DECODE.jsonl         # decode_bench: % of the copy rate per variant tag
    python3 tests/gpu/perf_summary.py paged   DIR                  # run-gpu.sh --paged: bench-paged{,-peers}.jsonl
    python3 tests/gpu/perf_summary.py general GENERAL.jsonl [V..]  # flash_check --bench-general: TFLOP/s and fraction
                                                                   # of plain (causal rows: of causal) per variant V,
                                                                   # then the first V's best over each other V's

decode: rows keyed (batch, L, splits), each variant's "pct_copy" in file order (tag/kernel when decode_bench named
the kernel), "BAD" where the harness's reference check failed. general: variants are the "impl" values the script's sed wrote (default: every one found, in file
order), grouped by the "mode" it wrote (burst / sustained).
"""
import collections
import json
import os
import re
import sys


def rows(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                # decode_bench before session 19 printed a non-finite max_err as C's inf / nan (not JSON)
                yield json.loads(re.sub(r':\s*-?(inf|nan)\b', ':null', line))


def decode(path):
    by_shape = collections.defaultdict(list)
    for j in rows(path):
        if "pct_copy" not in j:
            continue  # trace lines
        bad = "" if j.get("ok", True) else " BAD"
        tag = j["tag"] + ("/" + j["kernel"] if "kernel" in j else "")  # decode_bench --kernel: narrow / wide
        by_shape[(j["batch"], j["L"], j["splits"])].append("%s %.1f%s" % (tag, j["pct_copy"], bad))
    for k in sorted(by_shape):
        print("decode", k, " | ".join(by_shape[k]))


def paged(directory):
    for name in ("bench-paged.jsonl", "bench-paged-peers.jsonl"):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        for j in rows(path):
            if "pct_copy" in j and j.get("hd", 128) == 128:
                print(name.split(".")[0], j.get("impl"), j.get("dtype"), j.get("batch"), j.get("L"), j.get("page"),
                      j.get("splits", ""), j["pct_copy"])


def general(path, variants):
    t = collections.defaultdict(list)
    order = []
    for j in rows(path):
        t[(j["mode"], j["hd"], j["case"], j["impl"])].append(j["tflops"])
        if j["impl"] not in order:
            order.append(j["impl"])
    variants = variants or order
    for mode in ("burst", "sustained"):
        for hd in (64, 128, 256):
            have = [v for v in variants if (mode, hd, "plain", v) in t and (mode, hd, "causal", v) in t]
            if not have:
                continue
            plain = {v: max(t[(mode, hd, "plain", v)]) for v in have}
            causal = {v: max(t[(mode, hd, "causal", v)]) for v in have}
            for case in sorted({k[2] for k in t if k[0] == mode and k[1] == hd}):
                ref = causal if "causal" in case else plain
                cells = ["%s %s" % (v, "/".join("%.0f (%.2f)" % (x, x / ref[v]) for x in t[(mode, hd, case, v)]))
                         for v in have if (mode, hd, case, v) in t]
                # the first variant's best against each other's best (e.g. ours against a peer)
                first = have[0]
                if (mode, hd, case, first) in t:
                    best = max(t[(mode, hd, case, first)])
                    cells += ["%s/%s %.2f" % (first, v, best / max(t[(mode, hd, case, v)]))
                              for v in have[1:] if (mode, hd, case, v) in t]
                print(mode, hd, case.ljust(34), " ".join(cells))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("decode", "paged", "general"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    what, target = argv[1], argv[2]
    if not os.path.exists(target):
        print("perf_summary: %s: no such file or directory" % target, file=sys.stderr)
        return 2
    if what == "decode":
        decode(target)
    elif what == "paged":
        paged(target)
    else:
        general(target, argv[3:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
