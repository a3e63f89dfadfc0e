#!/usr/bin/env bash
# Run 134 (session 30; an H100 80GB HBM3 came for the H200 asked): main's bundle after run 133 (forwardPacked and forward free each layer as it ends; BatchGenerator budget 16384) on a GPU -- the whole Java GPU suite (after the GPU tests' manager set-up moved
# into one JUnit extension, DjlManagers), then the model benchmark against Hugging Face transformers (run-gpu.sh --model,
# the Llama-3.2-1B-shaped fp16 checkpoint; last run 11, 2026-12-02) in the time left.
# Packs (ignored .devcarry/): bundle62.txz = tests/gpu/bundle.sh --no-clean -q -o of main 79b8c85 with the landed fatbins
# (flash_fwd_sm90 cbc87cf2 pre-placed in ops/target/classes; the others as the pom builds them), repacked without DJL's
# tokenizers jar; libdjl_torch.so.xz = ../shared/gpu/djl-pytorch-jni (test infrastructure).
# carry [".devcarry/bundle62.txz", ".devcarry/libdjl_torch.so.xz"]; for the 64 MiB carry limit docs/ and
# model-zoo-examples/src/test/resources were moved out of the tree for the call and this script copied to the root.
. tests/gpu/perf_run_lib.sh
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf "$T/bundle62.txz" -C /tmp/b && xz -dc "$T/libdjl_torch.so.xz" > /tmp/libdjl_torch.so
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
python3 /tmp/b/python/extract_fatbins.py /tmp/b /tmp/fb > /dev/null && md5sum /tmp/fb/* | cut -c1-8,33-
gpu_suite /tmp/b /tmp/libdjl_torch.so
xz -c /tmp/suite.log > "$OUT/suite.log.xz"
FLASHDJL_DJL_JNI=/tmp/libdjl_torch.so OUT=/tmp/m timeout $((570 - SECONDS)) /tmp/b/run-gpu.sh --model > /tmp/model.log 2>&1
echo "model rc=$? at ${SECONDS}s"
cp /tmp/model.log "$OUT/model-run.log"; cp /tmp/m/*model* "$OUT/" 2>/dev/null
cat /tmp/m/bench-model-hf.jsonl /tmp/m/bench-model.jsonl 2>/dev/null | cut -c1-400
echo "all done at ${SECONDS}s"
