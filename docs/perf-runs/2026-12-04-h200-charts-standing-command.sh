#!/usr/bin/env bash
# Session 21: charts of where the kernels stand (docs/charts/2026-12-04-standing/), drawn by tests/gpu/bench_charts.py
# (matplotlib is on the GPU machine) from the runs the PERF.md standing table cites: run 68's flash harness rows (ours
# = "tree", cuDNN = "cudnn", burst and sustained; renamed flashdjl / torch-cudnn here), run 108's Java-path decode with
# its torch peers, run 38's cascade. No GPU work.
R=docs/perf-runs
mkdir -p /tmp/in
python3 - <<'PY'
import json
for mode in ("burst", "sustained"):
    with open(f"/tmp/in/run68-{mode}.jsonl", "w") as out:
        for line in open("docs/perf-runs/2026-12-03-h200-run68-flash.jsonl"):
            j = json.loads(line)
            if j.get("mode") != mode:
                continue
            j["impl"] = {"tree": "flashdjl", "cudnn": "torch-cudnn"}.get(j["impl"], j["impl"])
            out.write(json.dumps(j) + "\n")
PY
python3 tests/gpu/bench_charts.py $OUT/burst /tmp/in/run68-burst.jsonl $R/2026-12-04-h200-run108-bench-paged.jsonl $R/2026-12-04-h200-run108-bench-paged-peers.jsonl $R/2026-12-03-h200-run38-bench-cascade.jsonl
python3 tests/gpu/bench_charts.py $OUT/sustained /tmp/in/run68-sustained.jsonl
ls -la $OUT/*
