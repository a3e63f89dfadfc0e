package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.ContiguousKvCache;
import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.PagedSequenceKvStore;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.engine.nn.DecoderAttentionBlock;
import org.flashdjl.engine.nn.FlashScaledDotProductAttentionBlock;
import org.flashdjl.engine.nn.FlashTransformerEncoderBlock;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Every attention Block of engine-ext on {@code Device.gpu()} against the same block with the same weights on the
 * CPU in fp32 ({@link BlockCheck}): {@code NativeAttentionBlock} in bhsd and bshd (flash error budget of the float64
 * reference), the {@code ScaledDotProductAttentionBlock} drop-in (self and cross attention) and its encoder block,
 * and {@code DecoderAttentionBlock} (GQA 4:1, head dim 64, RoPE) over a contiguous cache, a paged store (prefill,
 * decode and append steps of two sequences) and a streaming sinks + window cache, in fp16 (the budget from the CPU
 * fp16 run) and, for the drop-ins, in DJL's default fp32 too.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class BlocksGpuTest {

    static final int HIDDEN = 256;
    static final int HEADS = 4;

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);

    @ParameterizedTest(name = "NativeAttentionBlock {0}")
    @ValueSource(strings = {"bhsd", "bshd"})
    void nativeAttentionBlock(String layout) {
        BlockCheck.nativeAttention(MANAGERS.gpu(), MANAGERS.cpu(), layout, Seeds.next());
    }

    /** The drop-ins: DJL convention blocks (fp32 by default), here also given fp16 weights. */
    static Stream<BlockCheck.Case<?>> dropIns() {
        return Stream.of(
                new BlockCheck.Case<>("ScaledDotProductAttention drop-in, self attention x [2, 37, 256], 4 heads",
                        BlocksGpuTest::sdpa, new Shape(2, 37, HIDDEN), (blk, m, t, seed) -> {
                            NDArray x = Reference.create(m, BlockCheck.inputs(seed, 2 * 37 * HIDDEN), t, 2, 37,
                                    HIDDEN);
                            return NdArrayAttention.floats(blk.forward(new ParameterStore(m, false), new NDList(x),
                                    false).singletonOrThrow());
                        }),
                new BlockCheck.Case<>("ScaledDotProductAttention drop-in, keys/values [2, 11, 256], queries"
                        + " [2, 5, 256]", BlocksGpuTest::sdpa, new Shape(2, 11, HIDDEN), (blk, m, t, seed) -> {
                            NDArray k = Reference.create(m, BlockCheck.inputs(seed, 2 * 11 * HIDDEN), t, 2, 11,
                                    HIDDEN);
                            NDArray q = Reference.create(m, BlockCheck.inputs(seed + 1, 2 * 5 * HIDDEN), t, 2, 5,
                                    HIDDEN);
                            NDArray v = Reference.create(m, BlockCheck.inputs(seed + 2, 2 * 11 * HIDDEN), t, 2, 11,
                                    HIDDEN);
                            return NdArrayAttention.floats(blk.forward(new ParameterStore(m, false),
                                    new NDList(k, q, v), false).singletonOrThrow());
                        }),
                new BlockCheck.Case<>("FlashTransformerEncoderBlock x [2, 37, 256], 4 heads, MLP 512",
                        () -> new FlashTransformerEncoderBlock(HIDDEN, HEADS, 512, 0f, Activation::gelu),
                        new Shape(2, 37, HIDDEN), (blk, m, t, seed) -> {
                            NDArray x = Reference.create(m, BlockCheck.inputs(seed, 2 * 37 * HIDDEN), t, 2, 37,
                                    HIDDEN);
                            return NdArrayAttention.floats(blk.forward(new ParameterStore(m, false), new NDList(x),
                                    false).singletonOrThrow());
                        }));
    }

    /** DecoderAttentionBlock over each kind of cache, in the model's dtype. */
    static Stream<BlockCheck.Case<?>> decoders() {
        return Stream.of(
                new BlockCheck.Case<>("DecoderAttentionBlock, contiguous cache, 2 streams, chunks 7,1,1,3,1,1",
                        () -> decoder(-1, 0), new Shape(1, 1, HIDDEN), (blk, m, t, seed) -> {
                            try (KvCache cache = new ContiguousKvCache(m, -1)) {
                                return streams(blk, m, t, seed, cache, new int[] {7, 1, 1, 3, 1, 1});
                            }
                        }),
                new BlockCheck.Case<>("DecoderAttentionBlock, streaming cache window 8 + 2 sinks, 2 streams",
                        () -> decoder(8, 2), new Shape(1, 1, HIDDEN), (blk, m, t, seed) -> {
                            try (KvCache cache = new StreamingKvCache(m, 2, 1, 64, t, 8, 2,
                                    StreamingKvCache.Positions.ORIGINAL)) {
                                return streams(blk, m, t, seed, cache, new int[] {7, 1, 1, 3, 1, 1, 1, 1, 1, 1});
                            }
                        }),
                new BlockCheck.Case<>("DecoderAttentionBlock, paged store (page 4), 2 sequences, steps 7+3, 1+1,"
                        + " 1+1, 2+1, 1+1, 1+5", () -> decoder(-1, 0), new Shape(1, 1, HIDDEN), BlocksGpuTest::paged));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource({"dropIns", "decoders"})
    void fp16OnTheGpuMatchesFp32OnTheCpu(BlockCheck.Case<?> c) {
        BlockCheck.compare(c, MANAGERS.cpu(), MANAGERS.gpu(), DataType.FLOAT16, Seeds.next());
    }

    @ParameterizedTest(name = "fp32: {0}")
    @MethodSource("dropIns")
    void fp32OnTheGpuMatchesFp32OnTheCpu(BlockCheck.Case<?> c) {
        BlockCheck.compare(c, MANAGERS.cpu(), MANAGERS.gpu(), DataType.FLOAT32, Seeds.next());
    }

    static FlashScaledDotProductAttentionBlock sdpa() {
        return FlashScaledDotProductAttentionBlock.builder().setEmbeddingSize(HIDDEN).setHeadCount(HEADS)
                .optAttentionProbsDropoutProb(0f).build();
    }

    /** Hidden 256, 4 query heads over 1 key/value head of dim 64, RoPE theta 10000, an optional window. */
    static DecoderAttentionBlock decoder(int window, int sinks) {
        return DecoderAttentionBlock.builder().setHiddenSize(HIDDEN).setNumHeads(HEADS).optNumKvHeads(1)
                .optHeadDim(64).optRopeTheta(10000).optSlidingWindow(window).optSinkTokens(sinks).build();
    }

    // Two streams that advance together through a KvCache: x [2, T, hidden] per chunk.
    private static float[] streams(DecoderAttentionBlock blk, NDManager m, DataType t, long seed, KvCache cache,
            int[] chunks) {
        ParameterStore ps = new ParameterStore(m, false);
        List<float[]> outs = new ArrayList<>();
        for (int i = 0; i < chunks.length; i++) {
            NDArray x = Reference.create(m, BlockCheck.inputs(seed + i, 2 * chunks[i] * HIDDEN), t, 2, chunks[i],
                    HIDDEN);
            outs.add(NdArrayAttention.floats(blk.forward(ps, x, cache))); // [2, T, hidden]
        }
        return BlockCheck.concat(outs);
    }

    // Two sequences of a paged store (one layer, page size 4) through forwardPacked.
    private static float[] paged(DecoderAttentionBlock blk, NDManager m, DataType t, long seed) {
        int[][] steps = {{7, 3}, {1, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 5}};
        long[] ids = {0, 1};
        ParameterStore ps = new ParameterStore(m, false);
        List<float[]> outs = new ArrayList<>();
        try (PagedSequenceKvStore store = PagedSequenceKvStore.create(1, 1, 64, t, m.getDevice(), 16, 4, "auto")) {
            store.addSequence(0);
            store.addSequence(1);
            for (int i = 0; i < steps.length; i++) {
                int[] counts = steps[i];
                long[] starts = store.reserve(ids, counts);
                long[] positions = new long[counts[0] + counts[1]];
                int row = 0;
                for (int s = 0; s < 2; s++) {
                    for (int j = 0; j < counts[s]; j++) {
                        positions[row++] = starts[s] + j;
                    }
                }
                NDArray x = Reference.create(m, BlockCheck.inputs(seed + i, positions.length * HIDDEN), t,
                        positions.length, HIDDEN);
                outs.add(NdArrayAttention.floats(blk.forwardPacked(ps, x, positions, 0, ids, counts, store)));
            }
        }
        return BlockCheck.concat(outs);
    }
}
