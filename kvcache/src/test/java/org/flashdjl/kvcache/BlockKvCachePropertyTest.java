package org.flashdjl.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

/**
 * Property test: random sequences of chunk calls (new chunks and repeated {@code chunkIdx}) against
 * {@link StreamModel}, a plain list of the stream; the cached keys, values, length and token
 * positions must equal the model's after {@code update} and after {@code afterUpdate} of every
 * step, in the filling phase and in steady state.
 */
class BlockKvCachePropertyTest {

    static Stream<Arguments> configs() {
        return Stream.of(
                // key dims (seqDim entry -1), value dims, seqDim, chunk, window, sink, dtype
                Arguments.of(new long[] {2, 3, -1, 4}, new long[] {2, 3, -1, 4}, 2, 4, 12, 0, DataType.FLOAT32),
                Arguments.of(new long[] {2, 3, -1, 4}, new long[] {2, 3, -1, 5}, -2, 4, 12, 4, DataType.FLOAT32),
                // sink not a multiple of the chunk; seqDim outermost
                Arguments.of(new long[] {-1, 2, 3}, new long[] {-1, 2, 2}, 0, 3, 5, 4, DataType.FLOAT32),
                // seqDim last: K and V share it
                Arguments.of(new long[] {2, -1}, new long[] {2, -1}, -1, 2, 6, 0, DataType.FLOAT32),
                Arguments.of(new long[] {3, -1}, new long[] {3, -1}, 1, 2, 6, 4, DataType.FLOAT32),
                // decode: chunk 1
                Arguments.of(new long[] {1, -1, 2, 5}, new long[] {1, -1, 2, 3}, 1, 1, 7, 4, DataType.FLOAT32),
                Arguments.of(new long[] {1, -1, 2, 5}, new long[] {1, -1, 2, 3}, -3, 1, 7, 0, DataType.FLOAT32),
                // window == chunk: nothing moves on a roll
                Arguments.of(new long[] {2, -1, 3}, new long[] {2, -1, 3}, 1, 4, 4, 4, DataType.FLOAT32),
                Arguments.of(new long[] {2, -1, 3}, new long[] {2, -1, 3}, 1, 4, 4, 0, DataType.FLOAT32),
                // window <= 2 * chunk: direct (disjoint) roll copy
                Arguments.of(new long[] {2, -1, 3}, new long[] {2, -1, 3}, 1, 4, 8, 4, DataType.FLOAT32),
                Arguments.of(new long[] {2, -1, 3}, new long[] {2, -1, 3}, 1, 4, 6, 2, DataType.FLOAT32),
                // bhsd with a larger window, other dtypes
                Arguments.of(new long[] {1, 4, -1, 16}, new long[] {1, 4, -1, 16}, 2, 16, 60, 4, DataType.FLOAT32),
                Arguments.of(new long[] {1, 2, -1, 8}, new long[] {1, 2, -1, 8}, 2, 4, 12, 4, DataType.FLOAT16),
                Arguments.of(new long[] {1, -1, 2, 8}, new long[] {1, -1, 2, 6}, 1, 4, 12, 4, DataType.FLOAT64));
    }

    @ParameterizedTest(name = "[{index}] k={0} v={1} seqDim={2} chunk={3} window={4} sink={5} {6}")
    @MethodSource("configs")
    void randomStreamMatchesListModel(
            long[] keyDims, long[] valueDims, int seqDimArg, int chunk, int window, int sink, DataType dt) {
        int seqDim = seqDimArg < 0 ? seqDimArg + keyDims.length : seqDimArg;
        StreamModel model = new StreamModel(keyDims, valueDims, seqDim, chunk, window, sink);
        int totalChunks = (sink + window) / chunk;
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        String ctx = "seed " + seed + ": ";
        try (NDManager base = NDManager.newBaseManager();
                BlockKvCache cache =
                        BlockKvCache.builder()
                                .setKeyShape(new Shape(keyDims))
                                .setValueShape(new Shape(valueDims))
                                .setSeqDim(seqDimArg)
                                .setChunkSize(chunk)
                                .setWindowSize(window)
                                .optSinkSize(sink)
                                .optDataType(dt)
                                .build(base)) {
            Shape kChunk = model.chunkShape(model.keyDims);
            Shape vChunk = model.chunkShape(model.valueDims);
            int steps = 4 * totalChunks + 12;
            long chunkIdx = -1;
            boolean sawSteadyRepeat = false;
            for (int step = 0; step < steps; step++) {
                boolean repeat = chunkIdx >= 0 && rnd.nextDouble() < 0.3;
                if (!repeat) {
                    chunkIdx++;
                } else if (cache.isSteadyState()) {
                    sawSteadyRepeat = true;
                }
                String at = ctx + "step " + step + " chunkIdx " + chunkIdx + (repeat ? " (repeat)" : "");
                try (NDManager m = base.newSubManager()) {
                    NDArray k = StreamModel.randomChunk(m, kChunk, dt, rnd);
                    NDArray v = StreamModel.randomChunk(m, vChunk, dt, rnd);
                    model.put(chunkIdx, StreamModel.read(k), StreamModel.read(v));
                    cache.beforeUpdate(chunkIdx);
                    cache.update(k, v);
                    check(cache, model, at + " after update");
                    cache.afterUpdate(chunkIdx);
                    check(cache, model, at + " after afterUpdate");
                }
                assertEquals(chunkIdx, cache.lastChunkIdx(), at);
                assertEquals(model.length() >= sink + window, cache.isSteadyState(), at);
            }
            assertEquals(true, cache.isSteadyState(), ctx + "never reached steady state");
            if (!sawSteadyRepeat) {
                // make sure a steady-state overwrite was exercised at least once
                try (NDManager m = base.newSubManager()) {
                    NDArray k = StreamModel.randomChunk(m, kChunk, dt, rnd);
                    NDArray v = StreamModel.randomChunk(m, vChunk, dt, rnd);
                    model.put(chunkIdx, StreamModel.read(k), StreamModel.read(v));
                    cache.beforeUpdate(chunkIdx);
                    cache.update(k, v);
                    cache.afterUpdate(chunkIdx);
                    check(cache, model, ctx + "final steady repeat");
                }
            }
        }
    }

    static void check(BlockKvCache cache, StreamModel model, String at) {
        long[] pos = model.positions();
        assertEquals(pos.length, cache.cachedLength(), at + ": cachedLength");
        assertArrayEquals(pos, cache.tokenPositions(), at + ": tokenPositions");
        assertEquals(model.length(), cache.streamLength(), at + ": streamLength");
        NDArray k = cache.cachedK();
        NDArray v = cache.cachedV();
        assertEquals(model.expectedKeyShape(), k.getShape(), at + ": cachedK shape");
        assertArrayEquals(model.expectedKeys(), StreamModel.read(k), 0.0, at + ": cachedK contents");
        assertArrayEquals(model.expectedValues(), StreamModel.read(v), 0.0, at + ": cachedV contents");
        if (pos.length == cache.getTotalSize()) {
            assertSame(cache.keyBuffer(), k, at + ": steady cachedK is the full buffer");
            assertSame(cache.valueBuffer(), v, at + ": steady cachedV is the full buffer");
        }
    }
}
