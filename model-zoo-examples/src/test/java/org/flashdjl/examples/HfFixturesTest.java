package org.flashdjl.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Checkpoints written by Hugging Face transformers 5.17 ({@code tests/gpu/make_hf_fixtures.py}, random weights
 * large enough that a wrong rule shows) against the logits and greedy tokens transformers computed for them (fp32,
 * eager attention): loaded through the public API, logits of every prompt position within 1e-4, greedy tokens
 * equal through the model's own caches (streaming ones for windowed layers) and through continuous batching over
 * the paged store; the tokenizer fixture also end to end through the CLI's {@code --model DIR}.
 */
class HfFixturesTest {

    private static final double TOL = 1e-4;

    /** The fixtures the lead generates; each must be present. */
    private static final Set<String> PLANNED = Set.of("llama2", "llama3", "llama3-v4config", "llama-linear",
            "llama-yarn", "mistral", "qwen2", "gemma2", "llama-tok");

    static Path root() throws Exception {
        return Paths.get(HfFixturesTest.class.getResource("/hf-fixtures").toURI());
    }

    static Stream<String> fixtures() throws Exception {
        try (Stream<Path> s = Files.list(root())) {
            List<String> names = s.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted()
                    .collect(Collectors.toList());
            return names.stream();
        }
    }

    /** A fixture's reference.json. */
    static final class Reference {
        final String name;
        final int[] promptIds;
        final int vocab;
        final float[] logits; // [T, V]
        final int[] greedyIds;
        final JsonObject json;

        Reference(Path dir) throws IOException {
            json = JsonParser.parseString(Files.readString(dir.resolve("reference.json"))).getAsJsonObject();
            name = json.get("name").getAsString();
            promptIds = ints(json.getAsJsonArray("prompt_ids"));
            int[] shape = ints(json.getAsJsonArray("logits_shape"));
            vocab = shape[1];
            assertEquals(promptIds.length, shape[0], "logits rows");
            ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(json.get("logits_f32_b64").getAsString()))
                    .order(ByteOrder.LITTLE_ENDIAN);
            logits = new float[shape[0] * shape[1]];
            b.asFloatBuffer().get(logits);
            greedyIds = ints(json.getAsJsonArray("greedy_ids"));
        }

        private static int[] ints(JsonArray a) {
            int[] out = new int[a.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.get(i).getAsInt();
            }
            return out;
        }
    }

    @Test
    void everyPlannedFixtureIsPresent() throws Exception {
        Set<String> present = fixtures().collect(Collectors.toCollection(TreeSet::new));
        assertTrue(present.containsAll(PLANNED), "missing fixtures: " + PLANNED.stream()
                .filter(n -> !present.contains(n)).sorted().collect(Collectors.toList()));
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsAndGreedyTokensMatchTransformers(String name) throws Exception {
        Path dir = root().resolve(name);
        Reference ref = new Reference(dir);
        assertEquals(name, ref.name);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(dir, m, AttentionOptions.defaults(), DataType.FLOAT32);
            assertEquals(ref.vocab, model.getConfig().getVocabSize());
            long[] ids = java.util.Arrays.stream(ref.promptIds).asLongStream().toArray();
            NDArray logits = model.forward(new ParameterStore(m, false), m.create(ids, new Shape(1, ids.length)),
                    null, false); // [1, T, V]
            float[] got = logits.toFloatArray();
            double max = 0;
            int at = 0;
            for (int i = 0; i < got.length; i++) {
                double d = Math.abs(got[i] - ref.logits[i]);
                if (d > max) {
                    max = d;
                    at = i;
                }
            }
            String what = name + ": max |logits - transformers| = " + max + " at position " + at / ref.vocab
                    + ", token " + at % ref.vocab + " (" + model.getConfig() + ")";
            assertTrue(max <= TOL, what);

            GenerationConfig greedy = GenerationConfig.builder().optMaxNewTokens(ref.greedyIds.length)
                    .optStopAtEos(false).build();
            Generator gen = new Generator(model, new ByteTokenizer(), m); // ids only: no text is compared here
            GenerationResult r = gen.generate(ref.promptIds, greedy, null);
            assertArrayEquals(ref.greedyIds, r.getTokenIds(), name + ": greedy tokens through the KV caches");

            BatchGenerator batch = new BatchGenerator(model, new ByteTokenizer(), m, 2,
                    (mdl, mgr) -> mdl.newPagedStore(16, 4));
            List<GenerationResult> rs = batch.generate(Collections.nCopies(2, new BatchRequest(ref.promptIds,
                    greedy, 0)), null);
            for (GenerationResult b : rs) {
                assertArrayEquals(ref.greedyIds, b.getTokenIds(), name + ": greedy tokens through the paged store");
            }
        }
    }

    @Test
    void theTokenizerFixtureRunsEndToEndThroughTheCli() throws Exception {
        Path dir = root().resolve("llama-tok");
        Reference ref = new Reference(dir);
        String prompt = ref.json.get("prompt_text").getAsString();
        String greedyText = ref.json.get("greedy_text").getAsString();
        try (LoadedModel lm = LoadedModel.load(dir, Device.cpu(), AttentionOptions.defaults())) {
            Generator gen = new Generator(lm.getModel(), lm.getTokenizer(), lm.getManager());
            GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(ref.greedyIds.length)
                    .optStopAtEos(false).build();
            assertArrayEquals(ref.promptIds, gen.promptIds(prompt, cfg), "prompt ids: BOS + tokenizer.json");
            GenerationResult r = gen.generate(prompt, cfg, null);
            assertArrayEquals(ref.greedyIds, r.getTokenIds());
            assertEquals(greedyText, r.getText());
        }
        String[] out = FlashDjlCliTest.run(0, "--model", dir.toString(), "--prompt", prompt, "--max-new-tokens",
                String.valueOf(ref.greedyIds.length), "--ignore-eos", "--no-progress");
        assertEquals(prompt + greedyText, FlashDjlCliTest.textOf(out[0]), out[0]);
        assertTrue(out[0].contains("prompt    : " + ref.promptIds.length + " tokens"), out[0]);
    }
}
