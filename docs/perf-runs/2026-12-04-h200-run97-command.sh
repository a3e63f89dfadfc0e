#!/usr/bin/env bash
# Run 97 (session 19): ops/src/test/cuda/cluster_probe.cu built here (nvcc -std=c++17 -O2 -arch=sm_90a -cudart static)
# and carried as .devcarry/cluster_probe
nvidia-smi --query-gpu=name --format=csv,noheader; .devcarry/cluster_probe | tee $OUT/cluster-probe.jsonl
