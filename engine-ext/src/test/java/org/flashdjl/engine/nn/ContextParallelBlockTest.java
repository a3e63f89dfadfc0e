package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.ops.parallel.ContextParallel;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;
import org.flashdjl.ops.parallel.SequenceSharding;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** The attention blocks over a real (in-process) process group equal single-rank attention. */
class ContextParallelBlockTest {

    @ParameterizedTest
    @ValueSource(strings = {"ring", "ulysses"})
    void shardedBlocksReassembleTheSingleRankOutput(String method) throws Exception {
        int world = 2;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray q = m.randomNormal(new Shape(1, 4, 12, 8)); // bhsd
            NDArray k = m.randomNormal(new Shape(1, 2, 12, 8));
            NDArray v = m.randomNormal(new Shape(1, 2, 12, 8));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray expected = NativeAttentionBlock.builder().optCausal(true).optBackend("math").build()
                    .forward(ps, new NDList(q, k, v), false).head();
            List<LocalProcessGroup> groups = LocalProcessGroup.create(world);
            ExecutorService pool = Executors.newFixedThreadPool(world);
            try {
                NDArray[] shards = new NDArray[world];
                Future<?>[] fs = new Future<?>[world];
                for (int r = 0; r < world; r++) {
                    final int rank = r;
                    fs[r] = pool.submit(() -> {
                        ContextParallelAttentionBlock block = ContextParallelAttentionBlock.builder().optMethod(method)
                                .optCausal(true).optBackend("online").build();
                        block.setContextParallelGroup(groups.get(rank));
                        NDArray qs = ContextParallel.shard(q, 2, rank, world, SequenceSharding.ZIGZAG);
                        NDArray ks = ContextParallel.shard(k, 2, rank, world, SequenceSharding.ZIGZAG);
                        NDArray vs = ContextParallel.shard(v, 2, rank, world, SequenceSharding.ZIGZAG);
                        shards[rank] = block.forward(new ParameterStore(m, false), new NDList(qs, ks, vs), false)
                                .head();
                        return null;
                    });
                }
                for (Future<?> f : fs) {
                    f.get();
                }
                NDArray actual = ContextParallel.unshard(shards, 2, SequenceSharding.ZIGZAG);
                float err = actual.sub(expected).abs().max().getFloat();
                assertTrue(err < 1e-5, method + ": max |diff| " + err);
            } finally {
                pool.shutdown();
                for (LocalProcessGroup g : groups) {
                    g.close();
                }
            }
        }
    }
}
