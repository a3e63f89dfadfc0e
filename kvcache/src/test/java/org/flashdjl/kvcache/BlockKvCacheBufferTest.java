package org.flashdjl.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.cuda.DeviceTensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

/**
 * Buffers are allocated once and never reallocated: across 10k steps (filling, steady state,
 * repeated chunks) the buffer arrays are the same objects over the same native storage (same
 * {@code data_ptr}), steady-state reads return them, and the number of live NDArrays does not grow.
 * Also {@code fromTensor}, {@code reset} and the filling-phase prefix views.
 */
class BlockKvCacheBufferTest {

    /** {@code data_ptr()} of a dense PyTorch-engine array, through the one NDArray device view of ops. */
    static long dataPtr(NDArray a) {
        return DeviceTensor.fromNDArray(a).getAddress();
    }

    private static int liveArrays(NDManager m) {
        return ((BaseNDManager) m).getManagedArrays().size();
    }

    @Test
    void buffersStableAndNoGrowthOver10kSteps() throws ReflectiveOperationException {
        int chunk = 2;
        int window = 16;
        int sink = 4;
        int steps = 10_000;
        Random rnd = new Random(11);
        try (NDManager base = NDManager.newBaseManager();
                BlockKvCache cache =
                        BlockKvCache.builder()
                                .setKeyShape(new Shape(1, 2, -1, 8))
                                .setValueShape(new Shape(1, 2, -1, 8))
                                .setSeqDim(2)
                                .setChunkSize(chunk)
                                .setWindowSize(window)
                                .optSinkSize(sink)
                                .build(base)) {
            StreamModel model = new StreamModel(new long[] {1, 2, -1, 8}, new long[] {1, 2, -1, 8}, 2, chunk, window, sink);
            NDArray kBuf = cache.keyBuffer();
            NDArray vBuf = cache.valueBuffer();
            String kUid = kBuf.getUid();
            long kPtr = dataPtr(kBuf);
            long vPtr = dataPtr(vBuf);
            assertNotEquals(0L, kPtr);
            // a few reusable chunks, so the test itself allocates nothing per step
            NDArray[] ks = new NDArray[4];
            NDArray[] vs = new NDArray[4];
            double[][] kd = new double[4][];
            double[][] vd = new double[4][];
            for (int i = 0; i < 4; i++) {
                ks[i] = StreamModel.randomChunk(base, new Shape(1, 2, chunk, 8), DataType.FLOAT32, rnd);
                vs[i] = StreamModel.randomChunk(base, new Shape(1, 2, chunk, 8), DataType.FLOAT32, rnd);
                kd[i] = StreamModel.read(ks[i]);
                vd[i] = StreamModel.read(vs[i]);
            }
            int liveAfterWarmup = -1;
            long chunkIdx = -1;
            int filledSteps = (sink + window) / chunk;
            for (int step = 0; step < steps; step++) {
                boolean repeat = chunkIdx >= 0 && step % 7 == 3;
                if (!repeat) {
                    chunkIdx++;
                }
                int which = step % 4;
                cache.beforeUpdate(chunkIdx);
                cache.update(ks[which], vs[which]);
                NDArray k = cache.cachedK();
                NDArray v = cache.cachedV();
                if (cache.cachedLength() == cache.getTotalSize()) {
                    assertSame(kBuf, k, "steady-state cachedK is the buffer");
                    assertSame(vBuf, v);
                } else {
                    assertSame(k, cache.cachedK(), "prefix view reused within a step");
                }
                cache.afterUpdate(chunkIdx);
                model.put(chunkIdx, kd[which], vd[which]);
                assertSame(kBuf, cache.keyBuffer());
                assertSame(vBuf, cache.valueBuffer());
                if (step == filledSteps + 10) {
                    liveAfterWarmup = liveArrays(base);
                }
                if (step % 1000 == 999) {
                    assertFalse(kBuf.isReleased());
                    assertEquals(kUid, kBuf.getUid());
                    assertEquals(kPtr, dataPtr(kBuf), "key storage moved at step " + step);
                    assertEquals(vPtr, dataPtr(vBuf), "value storage moved at step " + step);
                    assertEquals(kPtr, dataPtr(cache.cachedK()));
                    assertEquals(liveAfterWarmup, liveArrays(base), "live NDArrays grew by step " + step);
                }
            }
            assertTrue(model.length() > 5000);
            BlockKvCachePropertyTest.check(cache, model, "after " + steps + " steps");
        }
    }

    @Test
    void fillingPrefixViewsAreReleasedAsTheyGrow() {
        try (NDManager base = NDManager.newBaseManager();
                BlockKvCache cache =
                        BlockKvCache.builder()
                                .setKeyShape(new Shape(-1, 3))
                                .setValueShape(new Shape(-1, 2))
                                .setSeqDim(0)
                                .setChunkSize(1)
                                .setWindowSize(64)
                                .build(base)) {
            NDArray emptyK = cache.cachedK();
            assertEquals(new Shape(0, 3), emptyK.getShape(), "an empty cache reads as length 0");
            assertEquals(new Shape(0, 2), cache.cachedV().getShape());
            int live = liveArrays(base);
            NDArray prev = null;
            for (int c = 0; c < 63; c++) {
                try (NDManager m = base.newSubManager()) {
                    cache.beforeUpdate(c);
                    cache.update(m.ones(new Shape(1, 3)).mul(c), m.ones(new Shape(1, 2)));
                    NDArray k = cache.cachedK();
                    cache.cachedV();
                    assertEquals(c + 1, k.getShape().get(0));
                    if (prev != null) {
                        assertTrue(prev.isReleased(), "the shorter prefix view was released");
                    }
                    prev = k;
                    cache.afterUpdate(c);
                }
                assertEquals(live, liveArrays(base), "live NDArrays grew at chunk " + c);
            }
            prev.close(); // a user closing a returned view does not break the cache
            assertEquals(63, cache.cachedK().getShape().get(0));
            assertEquals(62.0, cache.cachedK().get(62).getFloat(0));
        }
    }

    @Test
    void fromTensorIsAFullSingleChunkCopy() {
        try (NDManager base = NDManager.newBaseManager()) {
            NDArray k = base.randomNormal(new Shape(2, 5, 3, 4));
            NDArray v = base.randomNormal(new Shape(2, 5, 3, 6));
            double[] kData = StreamModel.read(k);
            try (BlockKvCache cache = BlockKvCache.fromTensor(k, v, -3)) {
                assertEquals(5, cache.getChunkSize());
                assertEquals(5, cache.getWindowSize());
                assertEquals(0, cache.getSinkSize());
                assertEquals(1, cache.getSeqDim());
                assertTrue(cache.isSteadyState());
                assertEquals(0, cache.lastChunkIdx());
                assertEquals(BlockKvCache.Step.BEFORE_UPDATE, cache.expectedStep());
                assertArrayEquals(new long[] {0, 1, 2, 3, 4}, cache.tokenPositions());
                assertArrayEquals(kData, StreamModel.read(cache.cachedK()), 0.0);
                assertArrayEquals(StreamModel.read(v), StreamModel.read(cache.cachedV()), 0.0);
                k.set(new ai.djl.ndarray.index.NDIndex("0"), 42f);
                assertArrayEquals(kData, StreamModel.read(cache.cachedK()), 0.0, "a copy, not an alias");
                // the next chunk replaces the whole window; repeating it overwrites it
                NDArray k1 = base.randomNormal(new Shape(2, 5, 3, 4));
                NDArray v1 = base.randomNormal(new Shape(2, 5, 3, 6));
                cache.beforeUpdate(1);
                cache.update(k1, v1);
                cache.afterUpdate(1);
                assertArrayEquals(new long[] {5, 6, 7, 8, 9}, cache.tokenPositions());
                assertArrayEquals(StreamModel.read(k1), StreamModel.read(cache.cachedK()), 0.0);
                NDArray k2 = base.randomNormal(new Shape(2, 5, 3, 4));
                cache.beforeUpdate(1);
                cache.update(k2, v1);
                cache.afterUpdate(1);
                assertArrayEquals(StreamModel.read(k2), StreamModel.read(cache.cachedK()), 0.0);
            }
        }
    }

    @Test
    void resetStartsANewStreamInTheSameBuffers() throws ReflectiveOperationException {
        try (NDManager base = NDManager.newBaseManager();
                BlockKvCache cache =
                        BlockKvCache.builder()
                                .setKeyShape(new Shape(1, -1, 2))
                                .setValueShape(new Shape(1, -1, 2))
                                .setSeqDim(1)
                                .setChunkSize(2)
                                .setWindowSize(4)
                                .optSinkSize(2)
                                .optDataType(DataType.FLOAT64)
                                .build(base)) {
            long ptr = dataPtr(cache.keyBuffer());
            Random rnd = new Random(3);
            for (int round = 0; round < 2; round++) {
                StreamModel model = new StreamModel(new long[] {1, -1, 2}, new long[] {1, -1, 2}, 1, 2, 4, 2);
                for (int c = 0; c < 6; c++) {
                    try (NDManager m = base.newSubManager()) {
                        NDArray k = StreamModel.randomChunk(m, new Shape(1, 2, 2), DataType.FLOAT64, rnd);
                        NDArray v = StreamModel.randomChunk(m, new Shape(1, 2, 2), DataType.FLOAT64, rnd);
                        model.put(c, StreamModel.read(k), StreamModel.read(v));
                        cache.beforeUpdate(c);
                        cache.update(k, v);
                        cache.afterUpdate(c);
                        BlockKvCachePropertyTest.check(cache, model, "round " + round + " chunk " + c);
                    }
                }
                // abandon a step half-way, then reset
                cache.beforeUpdate(6);
                cache.reset();
                assertEquals(-1, cache.lastChunkIdx());
                assertEquals(0, cache.cachedLength());
                assertEquals(BlockKvCache.Step.BEFORE_UPDATE, cache.expectedStep());
            }
            assertEquals(ptr, dataPtr(cache.keyBuffer()));
        }
    }
}
