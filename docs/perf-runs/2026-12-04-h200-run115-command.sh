#!/usr/bin/env bash
# Run 115 (session 21): PagedDecodeBench --quick (64 x 4k, 1 x 64k) over this tree's bundle, with its new back-to-back
# reading (20 launches between one pair of events) next to the per-launch one; torch's SDPA peers (decode_peer_bench.py
# --quick) in the same call.
T=$PWD/.devcarry
mkdir -p /tmp/b && tar xJf $T/bundle.txz -C /tmp/b
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
timeout 150 /tmp/b/jre/bin/java -Xmx16g -Dai.djl.offline=true -cp "/tmp/b/lib/*" org.flashdjl.tests.gpu.PagedDecodeBench \
  --device 0 --quick > $OUT/bench-paged.jsonl 2> $OUT/bench-paged.log
echo "PagedDecodeBench rc=$? at ${SECONDS}s"; cat $OUT/bench-paged.jsonl; tail -5 $OUT/bench-paged.log
timeout 90 python3 /tmp/b/python/decode_peer_bench.py --ours $OUT/bench-paged.jsonl --quick > $OUT/bench-paged-peers.jsonl 2> $OUT/bench-paged-peers.log
echo "peers rc=$? at ${SECONDS}s"; cat $OUT/bench-paged-peers.jsonl
