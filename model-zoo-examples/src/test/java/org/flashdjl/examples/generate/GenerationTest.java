package org.flashdjl.examples.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.llama.LlamaReference;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;

/** Streaming generation, sampling determinism, and continuous batching equal to single-stream generation. */
class GenerationTest {

    @TempDir
    static Path tmp;

    static NDManager manager;
    static LlamaModel model;
    static Path dir;
    static final ByteTokenizer TOKENIZER = new ByteTokenizer();

    @BeforeAll
    static void load() throws Exception {
        dir = TinyModels.write(tmp.resolve("m"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F32, 17);
        manager = NDManager.newBaseManager();
        model = LlamaLoader.load(dir, manager, AttentionOptions.builder().optBackend("online").build(),
                DataType.FLOAT32);
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    @Test
    void streamingReportsEveryTokenAndGreedyMatchesTheReference() throws Exception {
        Generator gen = new Generator(model, TOKENIZER, manager);
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(6).optStopAtEos(false).build();
        List<TokenEvent> events = new ArrayList<>();
        GenerationResult a = gen.generate("abc", cfg, events::add);
        assertEquals(6, a.getTokenIds().length);
        assertEquals(6, events.size());
        assertEquals(4, a.getPromptIds().length); // BOS + 3 bytes
        assertEquals(ByteTokenizer.BOS, a.getPromptIds()[0]);
        for (int i = 0; i < 6; i++) {
            assertEquals(a.getTokenIds()[i], events.get(i).getTokenId());
            assertEquals(i + 1, events.get(i).getIndex());
            assertTrue(events.get(i).getKvBytes() > 0);
        }
        assertEquals(GenerationResult.FinishReason.LENGTH, a.getFinishReason());
        assertArrayEquals(greedyReference(a.getPromptIds(), 6), a.getTokenIds(),
                "greedy tokens vs the float64 reference forward pass");
    }

    // Greedy decoding with the float64 reference model (full recomputation each step, no cache, no DJL).
    static int[] greedyReference(int[] prompt, int n) throws java.io.IOException {
        LlamaReference ref = LlamaReference.forTests(dir);
        int[] seq = Arrays.copyOf(prompt, prompt.length + n);
        for (int step = 0; step < n; step++) {
            int len = prompt.length + step;
            double[][] logits = ref.logits(Arrays.copyOf(seq, len), -1, 0);
            double[] last = logits[len - 1];
            int best = 0;
            int second = -1;
            for (int v = 1; v < last.length; v++) {
                if (last[v] > last[best]) {
                    second = best;
                    best = v;
                } else if (second < 0 || last[v] > last[second]) {
                    second = v;
                }
            }
            assertTrue(last[best] - last[second] > 1e-4, "step " + step + ": the reference's top two logits are"
                    + " too close to compare greedy tokens (" + last[best] + ", " + last[second] + ")");
            seq[len] = best;
        }
        return Arrays.copyOfRange(seq, prompt.length, prompt.length + n);
    }

    @Test
    void samplingIsSeededAndTopKOneIsGreedy() {
        Generator gen = new Generator(model, TOKENIZER, manager);
        GenerationConfig greedy = GenerationConfig.builder().optMaxNewTokens(8).optStopAtEos(false).build();
        GenerationConfig s1 = GenerationConfig.builder().optMaxNewTokens(8).optTemperature(1.5f).optSeed(1)
                .optStopAtEos(false).build();
        GenerationConfig s2 = GenerationConfig.builder().optMaxNewTokens(8).optTemperature(1.5f).optSeed(2)
                .optStopAtEos(false).build();
        GenerationConfig topK1 = GenerationConfig.builder().optMaxNewTokens(8).optTemperature(1f).optTopK(1)
                .optStopAtEos(false).build();
        int[] a = gen.generate("xyz", s1, null).getTokenIds();
        assertArrayEquals(a, gen.generate("xyz", s1, null).getTokenIds());
        assertNotEquals(Arrays.toString(a), Arrays.toString(gen.generate("xyz", s2, null).getTokenIds()));
        assertArrayEquals(gen.generate("xyz", greedy, null).getTokenIds(), gen.generate("xyz", topK1, null)
                .getTokenIds());
    }

    /**
     * With a step budget of maxBatch tokens, prompts are prefilled a few tokens a step beside the decoding
     * sequences: more steps, the same tokens as single-stream generation. A budget below maxBatch (a running
     * sequence would get no token) or past the limit is refused by name.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"contiguous", "paged"})
    void aSmallStepBudgetChunksPromptsAndChangesNoToken(String store) {
        Generator single = new Generator(model, TOKENIZER, manager);
        String[] prompts = {"The quick brown fox", "hello world", "a", "0123456789"};
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(6).optStopAtEos(false).build();
        List<BatchRequest> requests = new ArrayList<>();
        for (String p : prompts) {
            requests.add(new BatchRequest(single.promptIds(p, cfg), cfg, 0));
        }
        BiFunction<LlamaModel, NDManager, SequenceKvStore> factory = (mdl, m) -> store.equals("paged")
                ? mdl.newPagedStore(32, 4) : mdl.newSequenceStore(m);
        BatchGenerator whole = new BatchGenerator(model, TOKENIZER, manager, 3, factory);
        BatchGenerator chunked = new BatchGenerator(model, TOKENIZER, manager, 3, factory, 3);
        assertEquals(BatchGenerator.DEFAULT_MAX_BATCHED_TOKENS, whole.getMaxBatchedTokens());
        List<GenerationResult> a = whole.generate(requests, null);
        int wholeSteps = whole.getLastStats().getSteps();
        List<GenerationResult> b = chunked.generate(requests, null);
        for (int i = 0; i < prompts.length; i++) {
            int[] want = single.generate(prompts[i], cfg, null).getTokenIds();
            assertArrayEquals(want, a.get(i).getTokenIds(), "default budget, sequence " + i);
            assertArrayEquals(want, b.get(i).getTokenIds(), "budget 3, sequence " + i);
        }
        assertTrue(chunked.getLastStats().getSteps() > wholeSteps, "budget 3 took " + chunked.getLastStats()
                .getSteps() + " steps, the default " + wholeSteps + ": no prompt was chunked");
        for (int bad : new int[] {2, BatchGenerator.MAX_BATCHED_TOKENS_LIMIT + 1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new BatchGenerator(model, TOKENIZER, manager, 3, factory, bad));
            assertTrue(e.getMessage().contains("maxBatchedTokens") && e.getMessage().contains(String.valueOf(bad)),
                    e.getMessage());
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"contiguous", "paged"})
    void continuousBatchingEqualsSingleStreamGeneration(String store) {
        Generator single = new Generator(model, TOKENIZER, manager);
        String[] prompts = {"a", "hello world", "The quick brown fox", "zz", "0123456789", "q"};
        int[] maxNew = {5, 9, 3, 7, 4, 6};
        int[] arrival = {0, 0, 0, 2, 4, 9};
        List<BatchRequest> requests = new ArrayList<>();
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            GenerationConfig.Builder b = GenerationConfig.builder().optMaxNewTokens(maxNew[i]).optStopAtEos(false);
            if (i % 2 == 1) {
                b.optTemperature(0.8f).optTopP(0.9f).optSeed(100 + i);
            }
            GenerationConfig cfg = b.build();
            requests.add(new BatchRequest(single.promptIds(prompts[i], cfg), cfg, arrival[i]));
            expected.add(single.generate(prompts[i], cfg, null).getTokenIds());
        }
        BatchGenerator batch = new BatchGenerator(model, TOKENIZER, manager, 3, (mdl, m) -> store.equals("paged")
                ? mdl.newPagedStore(32, 4) : mdl.newSequenceStore(m));
        List<long[]> order = new ArrayList<>();
        List<GenerationResult> results = batch.generate(requests, e -> order.add(new long[] {e.getSequenceId(),
            e.getIndex()}));
        for (int i = 0; i < prompts.length; i++) {
            assertArrayEquals(expected.get(i), results.get(i).getTokenIds(), "sequence " + i);
            assertEquals(TOKENIZER.decode(expected.get(i)), results.get(i).getText());
        }
        BatchGenerator.Stats s = batch.getLastStats();
        assertEquals(3, s.getMaxRunning());
        assertEquals(Arrays.stream(maxNew).sum(), s.getTokens());
        assertTrue(s.getSteps() < Arrays.stream(maxNew).sum(), "no batching happened: " + s.getSteps() + " steps");
        // sequences interleave: sequence 3 (arrives at step 2) produces tokens before sequence 1 finishes
        int firstOf3 = -1;
        int lastOf1 = -1;
        for (int i = 0; i < order.size(); i++) {
            if (order.get(i)[0] == 3 && firstOf3 < 0) {
                firstOf3 = i;
            }
            if (order.get(i)[0] == 1) {
                lastOf1 = i;
            }
        }
        assertTrue(firstOf3 < lastOf1, "sequence 3 did not join the running batch");
    }

    @Test
    void streamingDecoderHoldsIncompleteUtf8() {
        ByteTokenizer t = new ByteTokenizer();
        int[] ids = t.encode("héllo €");
        org.flashdjl.examples.tokenizer.StreamingDecoder d = t.newStreamingDecoder();
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(d.next(id));
        }
        sb.append(d.flush());
        assertEquals("héllo €", sb.toString());
    }
}
