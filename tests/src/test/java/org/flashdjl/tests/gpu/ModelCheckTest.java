package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.ByteTokenizer;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The model harness of the GPU suite ({@link ModelCheck}) on the CPU, where the CPU fp16 model plays the GPU's
 * part: its logits within the budget, its greedy tokens the argmax of the full fp32 recompute, batched and single
 * generations the same; and logits of other weights, or a token that is not the argmax, fail.
 */
@ExtendWith(Seeds.class)
class ModelCheckTest {

    @TempDir
    static Path tmp;

    private static NDManager cpu;
    private static LlamaModel cpu32;
    private static LlamaModel cpu16;
    private static Path checkpoint;

    @BeforeAll
    static void setUp() throws Exception {
        cpu = NDManager.newBaseManager(Device.cpu());
        checkpoint = ModelCheck.write(tmp.resolve("ckpt"), 11);
        cpu32 = ModelCheck.load(checkpoint, cpu, DataType.FLOAT32);
        cpu16 = ModelCheck.load(checkpoint, cpu, DataType.FLOAT16);
    }

    @AfterAll
    static void tearDown() {
        cpu.close();
    }

    @Test
    void logitsOfTheMathBackendPassAndOtherWeightsFail() throws Exception {
        long seed = Seeds.next();
        int[][] ids = {ModelCheck.prompt(new Random(seed), 23)};
        float[] ref = ModelCheck.logits(cpu32, cpu, ids);
        double budget = ModelCheck.budget(ref, ModelCheck.logits(cpu16, cpu, ids));
        LlamaModel math = LlamaLoader.load(checkpoint, cpu, AttentionOptions.builder().optBackend("math").build(),
                DataType.FLOAT32);
        int vocab = cpu32.getConfig().getVocabSize();
        assertTrue(ModelCheck.assertLogits("math backend", ref, ModelCheck.logits(math, cpu, ids), vocab, budget,
                "seed " + seed) > 0);
        LlamaModel other = ModelCheck.load(ModelCheck.write(tmp.resolve("other"), 12), cpu, DataType.FLOAT32);
        AssertionError e = assertThrows(AssertionError.class, () -> ModelCheck.assertLogits("other weights", ref,
                ModelCheck.logits(other, cpu, ids), vocab, budget, "seed " + seed));
        assertTrue(e.getMessage().contains("> budget"), e.getMessage());
    }

    @Test
    void greedyTokensOfTheFp16ModelAreTheFullRecomputesArgmax() {
        long seed = Seeds.next();
        int[] prompt = ModelCheck.prompt(new Random(seed), 7);
        Generator gen = new Generator(cpu16, new ByteTokenizer(), cpu);
        int[] tokens = gen.generate(prompt, GenerationConfig.builder().optMaxNewTokens(12).optStopAtEos(false)
                .build(), null).getTokenIds();
        ModelCheck.assertGreedy("CPU fp16 Generator", cpu32, cpu16, cpu, prompt, tokens, "seed " + seed);
        // a token that is not the argmax where the margin is clear must fail
        ModelCheck.Recompute r = ModelCheck.recompute(cpu32, cpu16, cpu, prompt);
        int last = prompt.length - 1;
        assertTrue(r.margin(last) > r.budget(), "the first token's margin is too small for this check; seed " + seed);
        int[] wrong = tokens.clone();
        wrong[0] = (r.argmax(last) + 1) % cpu32.getConfig().getVocabSize();
        AssertionError e = assertThrows(AssertionError.class, () -> ModelCheck.assertGreedy("a wrong first token",
                cpu32, cpu16, cpu, prompt, wrong, "seed " + seed));
        assertTrue(e.getMessage().contains("full fp32 recompute's argmax"), e.getMessage());
    }

    @Test
    void batchedAndSingleGenerationsAgree() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        Generator single = new Generator(cpu16, new ByteTokenizer(), cpu);
        List<BatchRequest> requests = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            prompts.add(ModelCheck.prompt(rnd, 3 + 9 * i));
            requests.add(new BatchRequest(prompts.get(i), GenerationConfig.builder().optMaxNewTokens(6 + i)
                    .optStopAtEos(false).build(), i));
        }
        List<GenerationResult> results = new BatchGenerator(cpu16, new ByteTokenizer(), cpu, 2,
                (mdl, m) -> mdl.newPagedStore(16, 4)).generate(requests, null);
        for (int i = 0; i < requests.size(); i++) {
            int[] expected = single.generate(prompts.get(i), requests.get(i).getConfig(), null).getTokenIds();
            ModelCheck.assertSameGreedy("CPU fp16 batch request " + i, cpu32, cpu16, cpu, prompts.get(i), expected,
                    results.get(i).getTokenIds(), "seed " + seed);
        }
        int[] p = prompts.get(0);
        int[] expected = single.generate(p, requests.get(0).getConfig(), null).getTokenIds();
        ModelCheck.Recompute r = ModelCheck.recompute(cpu32, cpu16, cpu, p);
        if (r.margin(p.length - 1) > r.budget()) {
            int[] wrong = expected.clone();
            wrong[0] = (wrong[0] + 1) % cpu32.getConfig().getVocabSize();
            assertThrows(AssertionError.class, () -> ModelCheck.assertSameGreedy("a clear-margin difference", cpu32,
                    cpu16, cpu, p, expected, wrong, "seed " + seed));
        }
    }
}
