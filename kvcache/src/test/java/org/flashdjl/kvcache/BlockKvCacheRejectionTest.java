package org.flashdjl.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Random;

/**
 * Every rejected call throws a clear exception and leaves the cache unchanged: the buffers
 * (compared bit for bit, stale slots included) and the bookkeeping are snapshotted before and
 * compared after each rejected call, in every state (empty, filling, steady, after {@code
 * beforeUpdate}, after {@code update}); afterwards the cache still streams correctly. Also the
 * constructor's validation.
 */
class BlockKvCacheRejectionTest {

    private static final long[] K_DIMS = {1, 2, -1, 4};
    private static final long[] V_DIMS = {1, 2, -1, 3};
    private static final int SEQ_DIM = 2;
    private static final int CHUNK = 2;
    private static final int WINDOW = 6;
    private static final int SINK = 4;

    private NDManager base;
    private BlockKvCache cache;
    private StreamModel model;
    private Random rnd;

    @BeforeEach
    void setUp() {
        base = NDManager.newBaseManager();
        cache = newCache(base, CHUNK, WINDOW, SINK, DataType.FLOAT32);
        model = new StreamModel(K_DIMS, V_DIMS, SEQ_DIM, CHUNK, WINDOW, SINK);
        rnd = new Random(7);
    }

    @AfterEach
    void tearDown() {
        cache.close();
        base.close();
    }

    private static BlockKvCache newCache(NDManager m, int chunk, int window, int sink, DataType dt) {
        return BlockKvCache.builder()
                .setKeyShape(new Shape(K_DIMS))
                .setValueShape(new Shape(V_DIMS))
                .setSeqDim(SEQ_DIM)
                .setChunkSize(chunk)
                .setWindowSize(window)
                .optSinkSize(sink)
                .optDataType(dt)
                .build(m);
    }

    /** Buffers (all slots) and bookkeeping. */
    private record Snapshot(double[] k, double[] v, String state) {}

    private Snapshot snapshot() {
        return new Snapshot(
                StreamModel.read(cache.keyBuffer()),
                StreamModel.read(cache.valueBuffer()),
                cache.stateString());
    }

    private <T extends Throwable> T rejected(Class<T> type, String messagePart, Executable call) {
        Snapshot before = snapshot();
        T e = assertThrows(type, call);
        assertTrue(
                e.getMessage().contains(messagePart),
                "message '" + e.getMessage() + "' should contain '" + messagePart + "'");
        Snapshot after = snapshot();
        assertEquals(before.state(), after.state(), "state changed by a rejected call: " + e.getMessage());
        assertArrayEquals(before.k(), after.k(), 0.0, "keys changed by: " + e.getMessage());
        assertArrayEquals(before.v(), after.v(), 0.0, "values changed by: " + e.getMessage());
        return e;
    }

    private NDArray chunk(NDManager m, long[] dims, DataType dt) {
        return StreamModel.randomChunk(m, model.chunkShape(dims), dt, rnd);
    }

    /** One complete, valid step, mirrored in the model. */
    private void step(NDManager m, long chunkIdx) {
        NDArray k = chunk(m, model.keyDims, DataType.FLOAT32);
        NDArray v = chunk(m, model.valueDims, DataType.FLOAT32);
        model.put(chunkIdx, StreamModel.read(k), StreamModel.read(v));
        cache.beforeUpdate(chunkIdx);
        cache.update(k, v);
        cache.afterUpdate(chunkIdx);
    }

    private void rejectIdleCalls(NDManager m) {
        long last = cache.lastChunkIdx();
        NDArray k = chunk(m, model.keyDims, DataType.FLOAT32);
        NDArray v = chunk(m, model.valueDims, DataType.FLOAT32);
        rejected(IllegalStateException.class, "expected beforeUpdate(chunkIdx)", () -> cache.update(k, v));
        rejected(IllegalStateException.class, "expected beforeUpdate(chunkIdx)", () -> cache.afterUpdate(last + 1));
        rejected(IllegalArgumentException.class, "skips ahead", () -> cache.beforeUpdate(last + 2));
        rejected(IllegalArgumentException.class, "skips ahead", () -> cache.beforeUpdate(Long.MAX_VALUE));
        rejected(IllegalArgumentException.class, "goes back", () -> cache.beforeUpdate(last - 1));
        rejected(IllegalArgumentException.class, "goes back", () -> cache.beforeUpdate(-5));
    }

    private void rejectMidStepCalls(NDManager m, long chunkIdx) {
        // after beforeUpdate: only update(k, v) is accepted
        NDArray k = chunk(m, model.keyDims, DataType.FLOAT32);
        NDArray v = chunk(m, model.valueDims, DataType.FLOAT32);
        rejected(IllegalStateException.class, "expected update(k, v)", () -> cache.beforeUpdate(chunkIdx));
        rejected(IllegalStateException.class, "expected update(k, v)", () -> cache.afterUpdate(chunkIdx));
        rejected(IllegalStateException.class, "expected update(k, v)", cache::cachedK);
        rejected(IllegalStateException.class, "expected update(k, v)", cache::cachedV);
        rejected(IllegalStateException.class, "expected update(k, v)", cache::cachedLength);
        rejected(IllegalStateException.class, "expected update(k, v)", cache::tokenPositions);
        rejected(IllegalStateException.class, "expected update(k, v)", cache::streamLength);
        // wrong chunks: K valid and V invalid must not write K
        NDArray longK = m.randomNormal(new Shape(1, 2, CHUNK + 1, 4));
        NDArray shortV = m.randomNormal(new Shape(1, 2, CHUNK - 1, 3));
        NDArray wrongHeads = m.randomNormal(new Shape(1, 3, CHUNK, 3));
        NDArray wrongRank = m.randomNormal(new Shape(2, CHUNK, 4));
        NDArray swapped = m.randomNormal(new Shape(1, 2, CHUNK, 3));
        NDArray f64 = chunk(m, model.valueDims, DataType.FLOAT64);
        NDArray f16 = chunk(m, model.keyDims, DataType.FLOAT16);
        NDArray ints = m.zeros(model.chunkShape(model.keyDims), DataType.INT32);
        NDArray closed = chunk(m, model.valueDims, DataType.FLOAT32);
        closed.close();
        rejected(IllegalArgumentException.class, "k has shape", () -> cache.update(longK, v));
        rejected(IllegalArgumentException.class, "v has shape", () -> cache.update(k, shortV));
        rejected(IllegalArgumentException.class, "v has shape", () -> cache.update(k, wrongHeads));
        rejected(IllegalArgumentException.class, "k has shape", () -> cache.update(wrongRank, v));
        rejected(IllegalArgumentException.class, "k has shape", () -> cache.update(swapped, k));
        rejected(IllegalArgumentException.class, "expected the cache dtype float32", () -> cache.update(k, f64));
        rejected(IllegalArgumentException.class, "expected the cache dtype float32", () -> cache.update(f16, v));
        rejected(IllegalArgumentException.class, "float16, float32, float64", () -> cache.update(ints, v));
        rejected(IllegalArgumentException.class, "v is null", () -> cache.update(k, null));
        rejected(IllegalArgumentException.class, "k is null", () -> cache.update(null, v));
        rejected(IllegalArgumentException.class, "v is closed", () -> cache.update(k, closed));
        // the valid update is still accepted, then only afterUpdate(chunkIdx)
        model.put(chunkIdx, StreamModel.read(k), StreamModel.read(v));
        cache.update(k, v);
        rejected(IllegalStateException.class, "expected afterUpdate(chunkIdx)", () -> cache.update(k, v));
        rejected(IllegalStateException.class, "expected afterUpdate(chunkIdx)", () -> cache.beforeUpdate(chunkIdx));
        rejected(IllegalArgumentException.class, "differs from the step's chunkIdx", () -> cache.afterUpdate(chunkIdx + 1));
        rejected(IllegalArgumentException.class, "differs from the step's chunkIdx", () -> cache.afterUpdate(chunkIdx - 1));
        BlockKvCachePropertyTest.check(cache, model, "mid-step after rejections");
        cache.afterUpdate(chunkIdx);
        BlockKvCachePropertyTest.check(cache, model, "after rejections");
    }

    @Test
    void rejectedCallsLeaveTheCacheUnchanged() {
        int totalChunks = (SINK + WINDOW) / CHUNK;
        try (NDManager m = base.newSubManager()) {
            // empty
            assertEquals(-1, cache.lastChunkIdx());
            rejectIdleCalls(m);
            rejected(IllegalArgumentException.class, "expected 0 (the first chunk)", () -> cache.beforeUpdate(1));
            cache.beforeUpdate(0);
            rejectMidStepCalls(m, 0);
            // filling
            step(m, 1);
            assertFalse(cache.isSteadyState());
            rejectIdleCalls(m);
            cache.beforeUpdate(2);
            rejectMidStepCalls(m, 2);
            cache.beforeUpdate(2); // repeat while filling
            rejectMidStepCalls(m, 2);
            // steady state; the mid-step checks happen after the roll of beforeUpdate
            for (long c = 3; c < totalChunks + 2; c++) {
                step(m, c);
            }
            assertTrue(cache.isSteadyState());
            rejectIdleCalls(m);
            long next = cache.lastChunkIdx() + 1;
            cache.beforeUpdate(next);
            rejectMidStepCalls(m, next);
            cache.beforeUpdate(next); // repeat in steady state
            rejectMidStepCalls(m, next);
            for (long c = next + 1; c < next + totalChunks; c++) {
                step(m, c);
                BlockKvCachePropertyTest.check(cache, model, "streaming on, chunk " + c);
            }
        }
    }

    @Test
    void closedCacheRejectsEverything() {
        NDArray kBuf = cache.keyBuffer();
        cache.close();
        cache.close(); // idempotent
        assertTrue(cache.isClosed());
        assertTrue(kBuf.isReleased(), "close() frees the buffers");
        assertThrows(IllegalStateException.class, () -> cache.beforeUpdate(0));
        assertThrows(IllegalStateException.class, cache::cachedK);
        assertThrows(IllegalStateException.class, cache::keyBuffer);
        assertThrows(IllegalStateException.class, cache::reset);
    }

    @Test
    void constructorValidation() {
        int arraysBefore = managedArrays();
        IllegalArgumentException e;
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 4, 10, 0, DataType.FLOAT32));
        assertTrue(e.getMessage().contains("(sinkSize + windowSize) % chunkSize must be 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 4, 8, 2, DataType.FLOAT32));
        assertTrue(e.getMessage().contains("(2 + 8) % 4 = 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 2, 6, 4, DataType.BFLOAT16));
        assertTrue(e.getMessage().contains("bfloat16"), e.getMessage());
        assertTrue(e.getMessage().contains("allowed dtypes: float16, float32, float64"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 2, 6, 4, DataType.UNKNOWN));
        assertTrue(e.getMessage().contains("allowed dtypes: float16, float32, float64"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 2, 6, 4, DataType.INT8));
        assertTrue(e.getMessage().contains("allowed dtypes: float16, float32, float64"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 8, 4, 4, DataType.FLOAT32));
        assertTrue(e.getMessage().contains("must be >= chunkSize"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 0, 4, 4, DataType.FLOAT32));
        assertTrue(e.getMessage().contains("chunkSize must be >= 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> newCache(base, 2, 4, -2, DataType.FLOAT32));
        assertTrue(e.getMessage().contains("sinkSize must be >= 0"), e.getMessage());

        BlockKvCache.Builder ok =
                BlockKvCache.builder()
                        .setKeyShape(new Shape(1, 2, 8, 4))
                        .setValueShape(new Shape(1, 2, 8, 3))
                        .setSeqDim(-2)
                        .setChunkSize(2)
                        .setWindowSize(6)
                        .optSinkSize(2);
        try (BlockKvCache c = ok.build(base)) {
            assertEquals(2, c.getSeqDim());
            assertEquals(new Shape(1, 2, 8, 4), c.getKeyShape());
            assertEquals(DataType.FLOAT32, c.getDataType());
            assertEquals(base.getDevice(), c.getDevice());
        }
        e = assertThrows(IllegalArgumentException.class, () -> ok.setSeqDim(4).build(base));
        assertTrue(e.getMessage().contains("seqDim 4 is out of range"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.setSeqDim(-5).build(base));
        assertTrue(e.getMessage().contains("out of range"), e.getMessage());
        ok.setSeqDim(2);
        e = assertThrows(IllegalArgumentException.class, () -> ok.setKeyShape(new Shape(1, 2, 7, 4)).build(base));
        assertTrue(e.getMessage().contains("must be the cache length sinkSize + windowSize = 8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.setKeyShape(new Shape(1, 3, -1, 4)).build(base));
        assertTrue(e.getMessage().contains("must be equal except in the last dimension"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.setKeyShape(new Shape(2, -1, 4)).build(base));
        assertTrue(e.getMessage().contains("same rank"), e.getMessage());
        Shape given = new Shape(1, 2, -1, 4);
        try (BlockKvCache c = ok.setKeyShape(given).build(base)) {
            assertEquals(new Shape(1, 2, 8, 4), c.getKeyShape());
            assertEquals(new Shape(1, 2, -1, 4), given, "the caller's Shape is not modified");
        }
        e = assertThrows(IllegalArgumentException.class, () -> BlockKvCache.builder().build(base));
        assertTrue(e.getMessage().contains("setKeyShape(..) is required"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> BlockKvCache.builder().setKeyShape(given).setValueShape(given).setSeqDim(2).setChunkSize(2).build(base));
        assertTrue(e.getMessage().contains("setWindowSize(..) is required"), e.getMessage());
        // failed constructions leak nothing, closed caches free everything
        assertEquals(arraysBefore, managedArrays());
    }

    private int managedArrays() {
        return ((ai.djl.ndarray.BaseNDManager) base).getManagedArrays().size();
    }

    @Test
    void fromTensorRejectsMismatchedValues() {
        try (NDManager m = base.newSubManager()) {
            NDArray k = m.randomNormal(new Shape(1, 2, 5, 4));
            NDArray v = m.randomNormal(new Shape(1, 2, 4, 4));
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> BlockKvCache.fromTensor(k, v, 2));
            assertTrue(e.getMessage().contains("must be the cache length"), e.getMessage());
            NDArray vh = m.randomNormal(new Shape(1, 2, 5, 4)).toType(DataType.FLOAT16, false);
            e = assertThrows(IllegalArgumentException.class, () -> BlockKvCache.fromTensor(k, vh, 2));
            assertTrue(e.getMessage().contains("expected the cache dtype float32"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> BlockKvCache.fromTensor(k, v, 4));
            assertTrue(e.getMessage().contains("out of range"), e.getMessage());
        }
    }
}
