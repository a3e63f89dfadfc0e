package org.flashdjl.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Random;

/**
 * The same stream check on a CUDA device, fp16 and fp32, with the buffer identity check. Tagged
 * {@code gpu} (excluded from the default build); skipped with a visible reason when DJL sees no
 * GPU.
 */
@Tag("gpu")
class BlockKvCacheGpuTest {

    @Test
    void streamOnGpuMatchesListModel() throws ReflectiveOperationException {
        int gpus = Engine.getInstance().getGpuCount();
        assumeTrue(gpus > 0, "DJL's " + Engine.getInstance().getEngineName() + " engine sees no GPU");
        Device gpu = Device.gpu();
        for (DataType dt : new DataType[] {DataType.FLOAT16, DataType.FLOAT32}) {
            long[] dims = {1, 4, -1, 16};
            int chunk = 4;
            int window = 28;
            int sink = 4;
            StreamModel model = new StreamModel(dims, dims, 2, chunk, window, sink);
            Random rnd = new Random(5);
            try (NDManager base = NDManager.newBaseManager(gpu);
                    BlockKvCache cache =
                            BlockKvCache.builder()
                                    .setKeyShape(new Shape(dims))
                                    .setValueShape(new Shape(dims))
                                    .setSeqDim(2)
                                    .setChunkSize(chunk)
                                    .setWindowSize(window)
                                    .optSinkSize(sink)
                                    .optDevice(gpu)
                                    .optDataType(dt)
                                    .build(base)) {
                assertEquals(gpu, cache.keyBuffer().getDevice());
                NDArray kBuf = cache.keyBuffer();
                long ptr = BlockKvCacheBufferTest.dataPtr(kBuf);
                long chunkIdx = -1;
                for (int step = 0; step < 40; step++) {
                    if (chunkIdx < 0 || step % 5 != 2) {
                        chunkIdx++;
                    }
                    try (NDManager m = base.newSubManager()) {
                        NDArray k = StreamModel.randomChunk(m, model.chunkShape(model.keyDims), dt, rnd);
                        NDArray v = StreamModel.randomChunk(m, model.chunkShape(model.valueDims), dt, rnd);
                        model.put(chunkIdx, StreamModel.read(k), StreamModel.read(v));
                        cache.beforeUpdate(chunkIdx);
                        cache.update(k, v);
                        BlockKvCachePropertyTest.check(cache, model, dt + " step " + step);
                        cache.afterUpdate(chunkIdx);
                    }
                    assertSame(kBuf, cache.keyBuffer());
                }
                assertEquals(ptr, BlockKvCacheBufferTest.dataPtr(kBuf), "device storage moved");
            }
        }
    }
}
