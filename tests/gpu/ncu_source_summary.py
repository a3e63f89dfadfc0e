#!/usr/bin/env python3
"""Summaries of an Nsight Compute SourceCounters CSV (per SASS instruction), for the flash kernels' profiles.

    ncu --clock-control none --section SourceCounters --page source --print-source sass --csv \
        -k regex:KERNEL --launch-skip N --launch-count 1 flash_check --bench-general ... > SRC.csv

    python3 tests/gpu/ncu_source_summary.py opcodes SRC.csv SCORES   # executed warp instructions per score by opcode
                                                                     # (SCORES = the launch's q.k pairs / 32) and the
                                                                     # opcode's share of the stall samples
    python3 tests/gpu/ncu_source_summary.py loop SRC.csv COUNT       # the instructions executed exactly COUNT times
                                                                     # (a loop body's: e.g. once per key tile per
                                                                     # consumer warp), in address order, with their
                                                                     # stall samples and the two largest reasons

Lines before the CSV header (the program's own output, ncu's notes) are skipped. docs/perf-runs/*-run79-* holds
the first files it read (session 17).
"""
import collections
import csv
import sys


def load(path):
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"Address"'))
    table = list(csv.reader(lines[start:]))
    header = table[0]
    return header, [dict(zip(header, r)) for r in table[1:] if len(r) == len(header)]


def num(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def opcode(source):
    words = source.split()
    if words and words[0].startswith("@"):  # predicate
        words = words[1:]
    return words[0].split(".")[0] if words else ""


EXEC, SAMPLES = "Instructions Executed", "Warp Stall Sampling (All Samples)"


def opcodes(path, scores):
    _, rows = load(path)
    count, samples = collections.Counter(), collections.Counter()
    for r in rows:
        count[opcode(r["Source"])] += num(r[EXEC])
        samples[opcode(r["Source"])] += num(r[SAMPLES])
    total_samples = max(sum(samples.values()), 1.0)
    print("total warp instructions %.0f (%.3f per score), stall samples %.0f"
          % (sum(count.values()), sum(count.values()) / scores, total_samples))
    for op, c in count.most_common(40):
        print("%-12s %6.3f / score   samples %5.1f %%" % (op, c / scores, 100 * samples[op] / total_samples))


def loop(path, times):
    header, rows = load(path)
    reasons = [c for c in header if c.startswith("stall_") and "Not Issued" not in c]
    body = [r for r in rows if abs(num(r[EXEC]) - times) < 0.5]
    all_samples = max(sum(num(r[SAMPLES]) for r in rows), 1.0)
    print("%d instructions executed %d times; %.1f %% of the stall samples"
          % (len(body), times, 100 * sum(num(r[SAMPLES]) for r in body) / all_samples))
    for r in body:
        top = sorted(((num(r[c]), c[len("stall_"):]) for c in reasons), reverse=True)[:2]
        print("%s %5.0f %-58s %s" % (r["Address"][-5:], num(r[SAMPLES]), r["Source"][:58],
                                     " ".join("%s:%.0f" % (name, v) for v, name in top if v > 0)))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("opcodes", "loop"):
        sys.exit(__doc__)
    if sys.argv[1] == "opcodes":
        opcodes(sys.argv[2], float(sys.argv[3]))
    else:
        loop(sys.argv[2], int(sys.argv[3]))
