package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.engine.cache.KvSegment;
import org.flashdjl.engine.cache.KvView;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.kvcache.BlockKvCache;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

/**
 * {@link BlockKvCache} and {@link StreamingKvCache} on CUDA NDArrays: the same sequence of updates on the GPU and
 * on the CPU gives bit-identical cached contents, positions and views (every step, filling and steady state,
 * overwrites of the last chunk included), and the GPU buffers are never reallocated (the same device addresses,
 * {@code DeviceTensor.fromNDArray(..).getAddress()}, from the first step to the last).
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class KvCacheGpuTest {

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeDjlGpu);

    @ParameterizedTest(name = "{0}, chunk {1}, window {2}, sinks {3}")
    @CsvSource({"float16, 4, 28, 4", "float32, 4, 28, 4", "float16, 1, 7, 2", "float16, 8, 8, 0"})
    void blockKvCacheOnTheGpuEqualsTheCpu(String dtype, int chunk, int window, int sinks) {
        DataType type = DataType.valueOf(dtype.toUpperCase());
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        long[] keyDims = {2, 4, -1, 32}; // [B, Hkv, seq, D]
        long[] valueDims = {2, 4, -1, 16};
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager();
                BlockKvCache onGpu = blockCache(g, keyDims, valueDims, chunk, window, sinks, type);
                BlockKvCache onCpu = blockCache(c, keyDims, valueDims, chunk, window, sinks, type)) {
            assertEquals(Device.gpu(), onGpu.keyBuffer().getDevice());
            NDArray kBuf = onGpu.keyBuffer();
            NDArray vBuf = onGpu.valueBuffer();
            long kAddr = DeviceTensor.fromNDArray(kBuf).getAddress();
            long vAddr = DeviceTensor.fromNDArray(vBuf).getAddress();
            long chunkIdx = -1;
            int steps = 3 * (sinks + window) / chunk + 5; // well into the steady state
            for (int step = 0; step < steps; step++) {
                if (chunkIdx < 0 || step % 5 != 2) {
                    chunkIdx++; // else overwrite the last chunk
                }
                String at = type + " step " + step + " (chunk " + chunkIdx + "; seed " + seed + ")";
                float[] k = Reference.randn(rnd, (int) (2 * 4 * chunk * 32));
                float[] v = Reference.randn(rnd, (int) (2 * 4 * chunk * 16));
                for (BlockKvCache cache : new BlockKvCache[] {onGpu, onCpu}) {
                    NDManager m = cache == onGpu ? g : c;
                    try (NDManager step1 = m.newSubManager()) {
                        cache.beforeUpdate(chunkIdx);
                        cache.update(Reference.create(step1, k, type, 2, 4, chunk, 32),
                                Reference.create(step1, v, type, 2, 4, chunk, 16));
                    }
                }
                assertArrayEquals(onCpu.tokenPositions(), onGpu.tokenPositions(), "token positions, " + at);
                assertArrayEquals(NdArrayAttention.floats(onCpu.cachedK()), NdArrayAttention.floats(onGpu.cachedK()),
                        "cached keys " + onGpu.cachedK().getShape() + ", " + at);
                assertArrayEquals(NdArrayAttention.floats(onCpu.cachedV()), NdArrayAttention.floats(onGpu.cachedV()),
                        "cached values " + onGpu.cachedV().getShape() + ", " + at);
                onGpu.afterUpdate(chunkIdx);
                onCpu.afterUpdate(chunkIdx);
                assertSame(kBuf, onGpu.keyBuffer(), "key buffer object, " + at);
                assertEquals(kAddr, DeviceTensor.fromNDArray(onGpu.keyBuffer()).getAddress(),
                        "key buffer device address moved, " + at);
                assertEquals(vAddr, DeviceTensor.fromNDArray(onGpu.valueBuffer()).getAddress(),
                        "value buffer device address moved, " + at);
            }
            assertEquals(onCpu.isSteadyState(), onGpu.isSteadyState());
            assertTrue(onGpu.isSteadyState(), "the run never reached the steady state (seed " + seed + ")");
        }
    }

    private static BlockKvCache blockCache(NDManager m, long[] keyDims, long[] valueDims, int chunk, int window,
            int sinks, DataType type) {
        return BlockKvCache.builder().setKeyShape(new Shape(keyDims)).setValueShape(new Shape(valueDims))
                .setSeqDim(2).setChunkSize(chunk).setWindowSize(window).optSinkSize(sinks)
                .optDevice(m.getDevice()).optDataType(type).build(m);
    }

    @ParameterizedTest(name = "{0} positions, window {1}, sinks {2}")
    @CsvSource({"ORIGINAL, 6, 2", "IN_CACHE, 6, 2", "ORIGINAL, 9, 0"})
    void streamingKvCacheOnTheGpuEqualsTheCpu(String positions, int window, int sinks) {
        StreamingKvCache.Positions pos = StreamingKvCache.Positions.valueOf(positions);
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        int b = 1;
        int hkv = 2;
        int d = 64;
        int[] chunks = {5, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1};
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager();
                StreamingKvCache onGpu = new StreamingKvCache(g, b, hkv, d, DataType.FLOAT16, window, sinks, pos);
                StreamingKvCache onCpu = new StreamingKvCache(c, b, hkv, d, DataType.FLOAT16, window, sinks, pos)) {
            long kAddr = DeviceTensor.fromNDArray(onGpu.getBlockCache().keyBuffer()).getAddress();
            long vAddr = DeviceTensor.fromNDArray(onGpu.getBlockCache().valueBuffer()).getAddress();
            for (int step = 0; step < chunks.length; step++) {
                int t = chunks[step];
                String at = "step " + step + " (" + t + " tokens after " + onCpu.nextPosition() + "; " + pos
                        + " positions; seed " + seed + ")";
                float[] k = Reference.randn(rnd, b * hkv * t * d);
                float[] v = Reference.randn(rnd, b * hkv * t * d);
                try (NDManager sg = g.newSubManager(); NDManager sc = c.newSubManager()) {
                    KvView vg = onGpu.append(Reference.create(sg, k, DataType.FLOAT16, b, hkv, t, d),
                            Reference.create(sg, v, DataType.FLOAT16, b, hkv, t, d));
                    KvView vc = onCpu.append(Reference.create(sc, k, DataType.FLOAT16, b, hkv, t, d),
                            Reference.create(sc, v, DataType.FLOAT16, b, hkv, t, d));
                    assertEquals(vc.getQueryStart(), vg.getQueryStart(), "query start, " + at);
                    assertEquals(vc.getSegments().size(), vg.getSegments().size(), "segments, " + at);
                    for (int s = 0; s < vc.getSegments().size(); s++) {
                        KvSegment sgm = vg.getSegments().get(s);
                        KvSegment scm = vc.getSegments().get(s);
                        assertEquals(scm.getKeyStart(), sgm.getKeyStart(), "segment " + s + " start, " + at);
                        assertEquals(Device.gpu(), sgm.getKeys().getDevice(), "segment " + s + " device, " + at);
                        assertArrayEquals(NdArrayAttention.floats(scm.getKeys()),
                                NdArrayAttention.floats(sgm.getKeys()), "segment " + s + " keys, " + at);
                        assertArrayEquals(NdArrayAttention.floats(scm.getValues()),
                                NdArrayAttention.floats(sgm.getValues()), "segment " + s + " values, " + at);
                    }
                }
                assertEquals(onCpu.cachedLength(), onGpu.cachedLength(), "cached length, " + at);
                assertEquals(kAddr, DeviceTensor.fromNDArray(onGpu.getBlockCache().keyBuffer()).getAddress(),
                        "key buffer device address moved, " + at);
                assertEquals(vAddr, DeviceTensor.fromNDArray(onGpu.getBlockCache().valueBuffer()).getAddress(),
                        "value buffer device address moved, " + at);
            }
            assertEquals(onCpu.memoryBytes(), onGpu.memoryBytes(), "storage bytes");
        }
    }
}
