package org.flashdjl.examples.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/**
 * Memory stays flat in long generations: every per-step NDArray is freed by its step, so the number of arrays
 * under the model's manager (counted recursively over its sub-managers) is the same after 1,000 and after
 * 10,000 streamed tokens, and the process's resident memory grows by less than a stated tolerance. The demo
 * model (hidden 128, 4 layers) streams with a sliding window + sinks over the fixed-size streaming cache and over
 * the contiguous cache; continuous batching runs over the paged and the contiguous store.
 */
class GenerationMemoryTest {

    /** Streamed tokens per run. */
    static final int TOKENS = Integer.getInteger("flashdjl.memoryTest.tokens", 10_000);

    /** Where the counts are compared with the end: after warm-up (allocator pools, JIT, first cache growth). */
    static final int WARM = TOKENS / 10;

    /** Tokens between two samples of the array count and the RSS. */
    static final int SAMPLE = TOKENS / 10;

    /**
     * RSS growth allowed between token {@link #WARM} and the end, measured after a {@code System.gc()} (the Java
     * heap's garbage counts in the RSS). Leaking ~24 arrays per token (the bug this test was written for) grew the
     * RSS by ~50 KiB per token: 9,000 tokens add ~440 MiB. Without it, under a loaded 2-core machine: samples
     * within +-40 MiB of each other (allocator noise, the contiguous cache's doublings), no trend. The contiguous cache itself grows by 4 layers x
     * 2 x 10k tokens x 2 heads x 16 dims x 4 bytes = 10 MiB (buffer doubling: up to 2x that while copying).
     */
    static final long RSS_TOLERANCE = 96L << 20;

    @TempDir
    static Path tmp;

    static NDManager manager;
    static Path dir;

    @BeforeAll
    static void writeDemo() throws IOException {
        dir = tmp.resolve("demo");
        DemoCheckpoint.write(dir, DemoCheckpoint.demoConfig(), DemoCheckpoint.SEED, SafeDType.F32);
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    private static LlamaModel load(NDManager m, AttentionOptions options) throws IOException {
        return LlamaLoader.load(dir, m, options, DataType.FLOAT32);
    }

    @ParameterizedTest(name = "{0} cache, window 64 + 4 sinks")
    @ValueSource(strings = {"streaming", "contiguous"})
    void streamedTokensLeaveTheModelManagerFlat(String cache) throws IOException {
        try (NDManager modelManager = manager.newSubManager()) {
            LlamaModel model = load(modelManager, AttentionOptions.builder().optBackend("auto")
                    .optSlidingWindow(64).optSinkTokens(4).optStreamingCache(cache.equals("streaming")).build());
            int before = modelManager.getManagedArrays().size();
            Generator gen = new Generator(model, new ByteTokenizer(), modelManager);
            GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(TOKENS).optStopAtEos(false).build();
            List<long[]> samples = new ArrayList<>(); // {token, arrays, rss} every SAMPLE tokens from WARM on
            gen.generate("Once upon a time", cfg, e -> {
                if (e.getIndex() >= WARM && e.getIndex() % SAMPLE == 0) {
                    System.gc(); // RSS counts the Java heap too: collect the garbage first
                    samples.add(new long[] {e.getIndex(), modelManager.getManagedArrays().size(), rssBytes()});
                }
            });
            StringBuilder trace = new StringBuilder();
            for (long[] x : samples) {
                trace.append(String.format("%n  token %5d: %6d arrays, RSS %4d MiB", x[0], x[1], x[2] >> 20));
            }
            long[] first = samples.get(0);
            long[] last = samples.get(samples.size() - 1);
            assertEquals(TOKENS, last[0], "the generation stopped early" + trace);
            for (long[] x : samples) {
                assertEquals(first[1], x[1], cache + ": NDArrays under the model's manager" + trace);
            }
            assertEquals(before, modelManager.getManagedArrays().size(), cache + ": NDArrays under the model's"
                    + " manager before vs after the generation");
            // the allocator's transient peaks (a contiguous buffer doubling) pass; a trend does not: compare the
            // lowest of the first three samples with the lowest of the last three
            long growth = lowest(samples.subList(samples.size() - 3, samples.size()))
                    - lowest(samples.subList(0, 3));
            assertTrue(growth < RSS_TOLERANCE, cache + ": RSS grew by " + (growth >> 20) + " MiB from tokens "
                    + first[0] + ".. to tokens .." + last[0] + "; allowed " + (RSS_TOLERANCE >> 20) + " MiB" + trace);
        }
    }

    @ParameterizedTest(name = "{0} store")
    @ValueSource(strings = {"paged", "contiguous"})
    void batchGenerationLeavesTheModelManagerFlat(String store) throws IOException {
        try (NDManager modelManager = manager.newSubManager()) {
            LlamaModel model = load(modelManager, AttentionOptions.builder().optBackend("auto").build());
            ByteTokenizer tokenizer = new ByteTokenizer();
            BatchGenerator batch = new BatchGenerator(model, tokenizer, modelManager, 4, (mdl, m) ->
                    store.equals("paged") ? mdl.newPagedStore(256, 8) : mdl.newSequenceStore(m));
            int before = modelManager.getManagedArrays().size();
            List<Integer> counts = new ArrayList<>(); // sampled every 50 tokens of sequence 0
            List<BatchRequest> requests = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(i == 0 ? 600 : 40 + 20 * i)
                        .optStopAtEos(false).build();
                requests.add(new BatchRequest(tokenizer.encode("request " + i), cfg, 3 * i));
            }
            batch.generate(requests, e -> {
                if (e.getSequenceId() == 0 && e.getIndex() % 50 == 0) {
                    counts.add(modelManager.getManagedArrays().size());
                }
            });
            int afterFirst = modelManager.getManagedArrays().size();
            batch.generate(requests, null);
            assertEquals(before, afterFirst, store + ": NDArrays under the model's manager before vs after a batch");
            assertEquals(before, modelManager.getManagedArrays().size(), store + ": after a second batch");
            // between steps only the store's storage lives under the model's manager: the same count every time
            // the same sequences run (sequence 0 runs alone from about step 370 on: 4 slots, arrivals every 3 steps)
            List<Integer> alone = counts.subList(7, counts.size()); // tokens 400, 450, .., 600
            for (int c : alone) {
                assertEquals(alone.get(0).intValue(), c, store + ": NDArrays while sequence 0 runs alone, sampled"
                        + " every 50 tokens: " + counts);
            }
        }
    }

    /**
     * A forward pass frees each layer's temporaries as the layer ends: what is left of the pass when it returns,
     * before the caller's step scope closes, is the same for 2 layers as for 8 -- the packed pass over the paged
     * and the contiguous store, and the plain forward without a cache. Before, a pass kept every layer's projections
     * and MLP activations until its step ended, so its peak grew with the layers times the tokens: 128 prompts of
     * 512 tokens in one packed pass ran an 80 GB H100 out of memory (docs/PERF.md, run 133).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"packed, paged store", "packed, contiguous store", "forward, no cache"})
    void aForwardPassKeepsNoLayersTemporaries(String path) throws IOException {
        int[] layers = {2, 8};
        int[] left = new int[layers.length];
        for (int c = 0; c < layers.length; c++) {
            Path d = tmp.resolve(path.replaceAll("[^a-z]", "") + "-layers-" + layers[c]);
            LlamaConfig cfg = LlamaConfig.builder().setSizes(128, 344, layers[c], 8, 2, ByteTokenizer.VOCAB_SIZE)
                    .optRope(10000, RopeScaling.none()).optRmsNormEps(1e-5).optMaxPositions(4096).build();
            DemoCheckpoint.write(d, cfg, DemoCheckpoint.SEED, SafeDType.F32);
            try (NDManager m = manager.newSubManager()) {
                LlamaModel model = LlamaLoader.load(d, m, AttentionOptions.builder().optBackend("auto").build(),
                        DataType.FLOAT32);
                SequenceKvStore kv = path.contains("paged") ? model.newPagedStore(64, 8)
                        : path.contains("contiguous") ? model.newSequenceStore(m) : null;
                if (kv != null) {
                    kv.addSequence(0);
                    kv.addSequence(1);
                }
                ParameterStore ps = new ParameterStore(m, false);
                long[] tokens = {72, 101, 108, 108, 111, 33, 63}; // [7]: sequences of 5 and 2 tokens when packed
                int before = 0;
                for (int pass = 0; pass < 2; pass++) { // the first pass allocates the stores' storage (14 tokens)
                    try (NDScope scope = new NDScope()) {
                        scope.suppressNotUsedWarning();
                        if (pass == 1) {
                            before = m.getManagedArrays().size();
                        }
                        NDArray logits = kv != null
                                ? model.forwardPacked(ps, m.create(tokens), new long[] {0, 1}, new int[] {5, 2}, kv)
                                : model.forward(ps, m.create(tokens, new Shape(1, 7)), null, false); // [.., vocab]
                        assertEquals(ByteTokenizer.VOCAB_SIZE, logits.getShape().getLastDimension());
                        left[c] = m.getManagedArrays().size() - before;
                    }
                }
                if (kv != null) {
                    kv.close();
                }
            }
        }
        assertEquals(left[0], left[1], path + ": arrays a pass leaves to its step scope, " + layers[0]
                + " layers vs " + layers[1]);
    }

    @Test
    void rssIsReadable() {
        assertTrue(rssBytes() > 0);
    }

    private static long lowest(List<long[]> samples) {
        long min = Long.MAX_VALUE;
        for (long[] x : samples) {
            min = Math.min(min, x[2]);
        }
        return min;
    }

    /** The resident set size of this process, from /proc/self/status (Linux). */
    static long rssBytes() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/status"), StandardCharsets.UTF_8)) {
                if (line.startsWith("VmRSS:")) {
                    String[] f = line.trim().split("\\s+");
                    return Long.parseLong(f[1]) * 1024;
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/status", e);
        }
        throw new IllegalStateException("no VmRSS line in /proc/self/status");
    }
}
