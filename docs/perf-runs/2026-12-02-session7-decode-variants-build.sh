#!/bin/bash
# build harness variants: build.sh name...
cd /work/main
for v in "$@"; do ( src=/work/exp/$v.cu
  extra=(); case $v in kvh*|cl*) extra+=(-DDECODE_KVH_FIRST);; esac; case $v in *trace) extra+=(-DDECODE_TRACE);; esac
  nvcc -std=c++17 -O3 -ftz=true -arch=sm_90a -I ops/src/main/cuda -DDECODE_SRC="\"$src\"" "${extra[@]}" -Xptxas -v -o /work/exp/db_$v ops/src/test/cuda/decode_bench.cu > /work/exp/log_$v.txt 2>&1; echo "$v rc=$? $(grep -A2 'hd128_plain' /work/exp/log_$v.txt | grep -oE 'Used [0-9]+ registers|[0-9]+ bytes spill stores' | tr '\n' ' ')" ) & done; wait
