package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.engine.cache.PagedSequenceKvStore;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.serving.ServingConfig;
import org.flashdjl.kvcache.BlockKvCache;
import org.flashdjl.kvcache.paged.OutOfPagesException;
import org.flashdjl.ops.attention.QkvLayout;

import org.junit.jupiter.api.function.Executable;

import java.nio.file.Path;

/**
 * The bad-input checks of the GPU suite that hold on any device (the GPU test runs them on {@code Device.gpu()},
 * the CPU test on the CPU): bf16 refused by name wherever a dtype is chosen, a paged store out of pages, head dims
 * the CUDA kernels lack falling back under {@code auto}.
 */
final class BadInput {

    private BadInput() {}

    /**
     * Asserts that a call throws an {@link IllegalArgumentException} whose message names every fragment.
     *
     * @param what the call, for messages
     * @param call the call
     * @param fragments what the message must contain
     * @return the message
     */
    static String assertRefused(String what, Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call, what);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), what + ": the message lacks '" + f + "': " + e.getMessage());
        }
        return e.getMessage();
    }

    /**
     * bf16 is refused, naming it, by every API that chooses a dtype: LlamaLoader, LoadedModel, the serving keys, the
     * paged store, BlockKvCache and StreamingKvCache; nothing is left on the manager.
     *
     * @param m a manager on the device under test
     * @param checkpoint a checkpoint directory
     */
    static void bf16IsRefusedByName(NDManager m, Path checkpoint) {
        Device device = m.getDevice();
        int before = m.getManagedArrays().size();
        assertRefused("LlamaLoader.load(.., BFLOAT16)", () -> LlamaLoader.load(checkpoint, m,
                AttentionOptions.defaults(), DataType.BFLOAT16), "float32 or float16", "bf16");
        assertRefused("LoadedModel.load(.., " + device + ", BFLOAT16)", () -> LoadedModel.load(checkpoint, device,
                AttentionOptions.defaults(), DataType.BFLOAT16), "float32 or float16", "bf16");
        assertRefused("ServingConfig dtype=bfloat16", () -> ServingConfig.builder().optDataType("bfloat16"),
                "dtype='bfloat16'", "allowed auto, float32, float16");
        assertRefused("PagedSequenceKvStore.create(.., BFLOAT16, " + device + ")", () -> PagedSequenceKvStore.create(
                2, 2, 64, DataType.BFLOAT16, device, 4, 16, "auto").close(), "bfloat16", "float16");
        assertRefused("BlockKvCache dtype BFLOAT16", () -> BlockKvCache.builder().setKeyShape(new Shape(1, 2, -1, 64))
                .setValueShape(new Shape(1, 2, -1, 64)).setSeqDim(2).setChunkSize(1).setWindowSize(8)
                .optDevice(device).optDataType(DataType.BFLOAT16).build(m).close(), "bfloat16", "float16");
        assertRefused("StreamingKvCache dtype BFLOAT16", () -> new StreamingKvCache(m, 1, 2, 64, DataType.BFLOAT16, 8,
                2, StreamingKvCache.Positions.ORIGINAL).close(), "bfloat16", "float16");
        assertEquals(before, m.getManagedArrays().size(), "arrays on the manager after the refusals");
    }

    /**
     * A paged store with 4 pages of 16 tokens refuses a 65-token reservation with {@link OutOfPagesException}
     * (needed 5, free 4, both in the message), leaves the store as it was, and takes 64 tokens afterwards.
     *
     * @param device the device of the pools
     */
    static void outOfPagesNamesTheNumbersAndChangesNothing(Device device) {
        try (PagedSequenceKvStore store = PagedSequenceKvStore.create(1, 2, 64, DataType.FLOAT16, device, 4, 16,
                "auto")) {
            store.addSequence(0);
            store.addSequence(1);
            store.reserve(new long[] {1}, new int[] {3});
            OutOfPagesException e = assertThrows(OutOfPagesException.class,
                    () -> store.reserve(new long[] {0, 1}, new int[] {49, 1}), "49 + 1 tokens into 3 free pages");
            assertEquals(4, e.getNeeded(), e.getMessage());
            assertEquals(3, e.getFree(), e.getMessage());
            assertTrue(e.getMessage().contains("needs 4 free pages, 3 free (of 4, page size 16)"), e.getMessage());
            assertEquals(0, store.length(0), "sequence 0 after the refusal");
            assertEquals(3, store.length(1), "sequence 1 after the refusal");
            assertEquals(3, store.getCache().getFreePageCount(), "free pages after the refusal");
            store.reserve(new long[] {0, 1}, new int[] {48, 1});
            assertEquals(48, store.length(0));
            assertEquals(0, store.getCache().getFreePageCount());
        }
    }

    /**
     * Head dims the CUDA kernels lack (80, 40) run under {@code auto} (on the GPU: the NDArray backends), within the
     * flash budget of the float64 reference, dense and paged.
     *
     * @param m a manager on the device under test
     * @param seed the seed of the inputs
     */
    static void headDimsWithoutKernelsFallBackUnderAuto(NDManager m, long seed) {
        for (int d : new int[] {80, 40}) {
            NdArrayAttention.runDense(m, new NdArrayAttention.Dense("causal", 1, 4, 2, 17, 40, d, QkvLayout.BHSD),
                    "auto", seed);
            NdArrayAttention.runPaged(m, new NdArrayAttention.Paged("causal", 4, 2, d, 16, new int[] {17, 5}, null),
                    "auto", seed);
        }
    }

    /**
     * Creates fp16 zeros.
     *
     * @param m the manager
     * @param shape the shape
     * @return the array
     */
    static NDArray zeros16(NDManager m, long... shape) {
        return m.zeros(new Shape(shape), DataType.FLOAT16);
    }
}
