package org.flashdjl.examples.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.safetensors.SafeDType;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Random;

/**
 * The tiny model's logits against the float64 reference, for every dense backend; incremental decoding through
 * the cache against full recomputation; sliding window + sinks against the masked full computation; fp16 and
 * bf16 checkpoints; tied embeddings with linear RoPE scaling.
 */
class LlamaModelTest {

    private static final double TOL = 2e-4;

    @TempDir
    static Path tmp;

    static Path f32;
    static int[] tokens;

    @BeforeAll
    static void writeCheckpoint() throws Exception {
        f32 = TinyModels.write(tmp.resolve("f32"), TinyModels.config(256, false, RopeScaling.none()), SafeDType.F32,
                1);
        Random r = new Random(3);
        tokens = new int[19];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(256);
        }
    }

    private static NDArray tokenArray(NDManager m, int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return m.create(l, new Shape(1, ids.length));
    }

    private static void assertMatchesReference(double[][] ref, float[] logits, int vocab, String what) {
        double max = 0;
        double scale = 0;
        for (int t = 0; t < ref.length; t++) {
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, Math.abs(ref[t][v] - logits[t * vocab + v]));
                scale = Math.max(scale, Math.abs(ref[t][v]));
            }
        }
        assertTrue(scale > 0.1, "degenerate logits");
        assertTrue(max <= TOL * Math.max(1, scale), what + ": max |logits - float64 reference| = " + max
                + " (logit scale " + scale + ")");
    }

    private static float[] incremental(LlamaModel model, NDManager m, int[] ids, int[] chunks) {
        ParameterStore ps = new ParameterStore(m, false);
        KvCache[] caches = model.newCaches(m, -1);
        NDList outs = new NDList();
        int pos = 0;
        for (int c : chunks) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                int[] chunk = java.util.Arrays.copyOfRange(ids, pos, pos + c);
                NDArray logits = model.forward(ps, tokenArray(m, chunk), caches, false);
                NDScope.unregister(logits);
                outs.add(logits);
            }
            pos += c;
        }
        for (KvCache c : caches) {
            c.close();
        }
        return NDArrays.concat(outs, 1).toFloatArray();
    }

    private static final int[] CHUNKS = {7, 1, 1, 4, 1, 1, 2, 1, 1};

    @ParameterizedTest
    @ValueSource(strings = {"math", "online", "auto"})
    void everyBackendMatchesTheFloat64ReferenceAndIncrementalEqualsFull(String backend) throws Exception {
        LlamaConfig config = LlamaConfig.read(f32.resolve("config.json"));
        double[][] ref = new LlamaReference(f32, config, 1).logits(tokens, -1, 0);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(f32, m, AttentionOptions.builder().optBackend(backend).build(),
                    DataType.FLOAT32);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray full = model.forward(ps, tokenArray(m, tokens), null, false); // [1, T, V]
            assertEquals(new Shape(1, tokens.length, 256), full.getShape());
            float[] fullLogits = full.toFloatArray();
            assertMatchesReference(ref, fullLogits, 256, backend + " full");
            float[] inc = incremental(model, m, tokens, CHUNKS);
            float diff = 0;
            for (int i = 0; i < inc.length; i++) {
                diff = Math.max(diff, Math.abs(inc[i] - fullLogits[i]));
            }
            assertTrue(diff < 1e-4, backend + ": incremental vs full max |diff| " + diff);
            // the Block interface gives the same logits
            NDArray viaBlock = model.forward(ps, new NDList(tokenArray(m, tokens)), false).head();
            assertTrue(viaBlock.sub(full).abs().max().getFloat() == 0f);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3})
    void slidingWindowAndSinksMatchTheMaskedFullComputation(int sinks) throws Exception {
        LlamaConfig config = LlamaConfig.read(f32.resolve("config.json"));
        int window = 5;
        double[][] ref = new LlamaReference(f32, config, 1).logits(tokens, window, sinks);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(f32, m, AttentionOptions.builder().optBackend("online")
                    .optSlidingWindow(window).optSinkTokens(sinks).build(), DataType.FLOAT32);
            ParameterStore ps = new ParameterStore(m, false);
            float[] full = model.forward(ps, tokenArray(m, tokens), null, false).toFloatArray();
            assertMatchesReference(ref, full, 256, "window " + window + " sinks " + sinks);
            // the streaming cache (sinks + window in a BlockKvCache) holds sinks + window tokens only
            KvCache[] caches = model.newCaches(m, -1);
            assertTrue(caches[0] instanceof StreamingKvCache);
            for (KvCache c : caches) {
                c.close();
            }
            float[] inc = incremental(model, m, tokens, CHUNKS);
            float diff = 0;
            for (int i = 0; i < inc.length; i++) {
                diff = Math.max(diff, Math.abs(inc[i] - full[i]));
            }
            assertTrue(diff < 1e-4, "streaming-cache incremental vs masked full: " + diff);
            LlamaModel contiguous = LlamaLoader.load(f32, m, AttentionOptions.builder().optBackend("math")
                    .optSlidingWindow(window).optSinkTokens(sinks).optStreamingCache(false).build(),
                    DataType.FLOAT32);
            float[] inc2 = incremental(contiguous, m, tokens, CHUNKS);
            diff = 0;
            for (int i = 0; i < inc2.length; i++) {
                diff = Math.max(diff, Math.abs(inc2[i] - full[i]));
            }
            assertTrue(diff < 1e-4, "contiguous-cache incremental vs masked full: " + diff);
        }
    }

    @Test
    void inCachePositionsEqualOriginalOnesUntilTheCacheIsFull() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(f32, m, AttentionOptions.builder().optSlidingWindow(6)
                    .optSinkTokens(2).optRopePositions(StreamingKvCache.Positions.IN_CACHE).build(),
                    DataType.FLOAT32);
            int[] prefix = java.util.Arrays.copyOf(tokens, 8); // sinks + window = 8: never evicts
            float[] full = model.forward(new ParameterStore(m, false), tokenArray(m, prefix), null, false)
                    .toFloatArray();
            float[] inc = incremental(model, m, prefix, new int[] {3, 1, 1, 1, 2});
            float diff = 0;
            for (int i = 0; i < inc.length; i++) {
                diff = Math.max(diff, Math.abs(inc[i] - full[i]));
            }
            assertTrue(diff < 1e-4, "in-cache vs full while filling: " + diff);
            float[] longer = incremental(model, m, tokens, CHUNKS); // past the cache size: StreamingLLM rotation
            for (float f : longer) {
                assertTrue(Float.isFinite(f));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16"})
    void halfPrecisionCheckpointsAreConvertedOnLoad(String dtype) throws Exception {
        LlamaConfig config = TinyModels.config(256, true, RopeScaling.linear(2));
        Path dir = TinyModels.write(tmp.resolve(dtype), config, SafeDType.valueOf(dtype), 5);
        double[][] ref = new LlamaReference(dir, LlamaConfig.read(dir.resolve("config.json")), 2).logits(tokens, -1,
                0);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(dir, m, AttentionOptions.defaults(), DataType.FLOAT32);
            assertTrue(model.getConfig().isTieWordEmbeddings());
            assertEquals(RopeScaling.Type.LINEAR, model.getConfig().getRopeScaling().getType());
            NDArray logits = model.forward(new ParameterStore(m, false), tokenArray(m, tokens), null, false);
            assertEquals(DataType.FLOAT32, logits.getDataType());
            assertMatchesReference(ref, logits.toFloatArray(), 256, dtype + " tied linear-rope");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"contiguous", "paged"})
    void packedStepsOverTheSequenceStoreEqualFullRecomputation(String kind) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(f32, m, AttentionOptions.builder().optBackend("online").build(),
                    DataType.FLOAT32);
            ParameterStore ps = new ParameterStore(m, false);
            int[] a = java.util.Arrays.copyOfRange(tokens, 0, 11);
            int[] b = java.util.Arrays.copyOfRange(tokens, 5, 19);
            int[][] steps = {{6, 4}, {1, 3}, {2, 1}, {1, 5}, {1, 1}}; // tokens of a and b per step
            try (org.flashdjl.engine.cache.SequenceKvStore store = kind.equals("paged") ? model.newPagedStore(16, 4)
                    : model.newSequenceStore(m)) {
                store.addSequence(10);
                store.addSequence(20);
                int pa = 0;
                int pb = 0;
                for (int[] step : steps) {
                    long[] packed = new long[step[0] + step[1]];
                    for (int i = 0; i < step[0]; i++) {
                        packed[i] = a[pa + i];
                    }
                    for (int i = 0; i < step[1]; i++) {
                        packed[step[0] + i] = b[pb + i];
                    }
                    pa += step[0];
                    pb += step[1];
                    float[] got = model.forwardPacked(ps, m.create(packed), new long[] {10, 20}, step, store)
                            .toFloatArray(); // [2, vocab]
                    float[] wantA = model.forward(ps, tokenArray(m, java.util.Arrays.copyOf(a, pa)), null, true)
                            .toFloatArray();
                    float[] wantB = model.forward(ps, tokenArray(m, java.util.Arrays.copyOf(b, pb)), null, true)
                            .toFloatArray();
                    for (int v = 0; v < 256; v++) {
                        assertEquals(wantA[v], got[v], 1e-4, "a at " + pa);
                        assertEquals(wantB[v], got[256 + v], 1e-4, "b at " + pb);
                    }
                }
                assertEquals(pa, store.length(10));
                store.fork(20, 30);
                assertEquals(pb, store.length(30));
                store.free(10);
                assertTrue(!store.contains(10) && store.contains(30));
            }
        }
    }

    @Test
    void lastOnlyLogitsAreTheLastRow() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(f32, m, AttentionOptions.defaults(), DataType.FLOAT32);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray full = model.forward(ps, tokenArray(m, tokens), null, false);
            NDArray last = model.forward(ps, tokenArray(m, tokens), null, true);
            assertEquals(new Shape(1, 1, 256), last.getShape());
            float diff = full.get(new NDIndex(":, -1:, :")).sub(last).abs().max().getFloat();
            assertTrue(diff < 1e-6, "max diff " + diff);
        }
    }
}
