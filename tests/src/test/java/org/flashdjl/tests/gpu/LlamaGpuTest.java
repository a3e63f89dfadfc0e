package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.inference.Predictor;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.types.DataType;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.serving.ServingConfig;
import org.flashdjl.examples.serving.ServingModelDir;
import org.flashdjl.examples.tokenizer.ByteTokenizer;
import org.flashdjl.ops.testing.Seeds;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The LLaMA model, its generators and the serving translator on {@code Device.gpu()} in fp16, against the same
 * weights on the CPU in fp32 ({@link ModelCheck}: a random checkpoint of head dim 64, GQA 4:1, loaded through
 * {@code LlamaLoader}): logits of a full forward within the fp16 budget (the CPU fp16 run's error, doubled, with a
 * floor) and the same top-1 token where the fp32 margin exceeds it; {@code Generator}'s greedy tokens (paged store)
 * equal to the argmax of a full recompute wherever the margin exceeds the budget; {@code BatchGenerator} over the
 * paged store (six requests of different lengths arriving at different steps) and the serving translator loaded
 * through {@code Criteria} on the GPU giving each request the single {@code Generator}'s tokens, up to a first
 * difference at a near tie.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class LlamaGpuTest {

    @TempDir
    static Path tmp;

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);

    private static long weightsSeed;
    private static Path checkpoint;
    private static LlamaModel gpu16;
    private static LlamaModel cpu32;
    private static LlamaModel cpu16;

    @BeforeAll
    static void setUp() throws Exception {
        if (!DjlGpu.available()) {
            return; // each test reports the skip and its reason
        }
        weightsSeed = Seeds.next();
        checkpoint = ModelCheck.write(tmp.resolve("ckpt"), weightsSeed);
        gpu16 = ModelCheck.load(checkpoint, MANAGERS.gpu(), DataType.FLOAT16);
        cpu32 = ModelCheck.load(checkpoint, MANAGERS.cpu(), DataType.FLOAT32);
        cpu16 = ModelCheck.load(checkpoint, MANAGERS.cpu(), DataType.FLOAT16);
    }

    private static String seeds(long seed) {
        return "weights seed " + weightsSeed + ", seed " + seed;
    }

    @Test
    void logitsMatchTheCpuInFp32() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        int[][] ids = {ModelCheck.prompt(rnd, 77), ModelCheck.prompt(rnd, 77)};
        float[] ref = ModelCheck.logits(cpu32, MANAGERS.cpu(), ids);
        double budget = ModelCheck.budget(ref, ModelCheck.logits(cpu16, MANAGERS.cpu(), ids));
        float[] got = ModelCheck.logits(gpu16, MANAGERS.gpu(), ids);
        int checked = ModelCheck.assertLogits("GPU fp16 logits [2, 77, 259]", ref, got,
                cpu32.getConfig().getVocabSize(), budget, seeds(seed));
        assertTrue(checked >= ids.length * ids[0].length / 2, "top-1 checked on only " + checked + " of "
                + ids.length * ids[0].length + " rows: the margin rule says too little; " + seeds(seed));
    }

    @Test
    void greedyGeneratorTokensAreTheArgmaxOfAFullRecompute() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        Generator gen = new Generator(gpu16, new ByteTokenizer(), MANAGERS.gpu());
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(40).optStopAtEos(false).build();
        for (int length : new int[] {1, 45}) {
            int[] prompt = ModelCheck.prompt(rnd, length);
            GenerationResult r = gen.generate(prompt, cfg, null);
            assertEquals(40, r.getTokenIds().length, "tokens generated; " + seeds(seed));
            ModelCheck.assertGreedy("GPU Generator, " + length + "-token prompt", cpu32, cpu16, MANAGERS.cpu(), prompt,
                    r.getTokenIds(), seeds(seed));
        }
    }

    @Test
    void batchGeneratorOnThePagedStoreGivesEachRequestItsSingleStreamTokens() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        int[] lengths = {5, 33, 1, 70, 17, 9};
        int[] maxNew = {12, 20, 8, 16, 24, 10};
        int[] arrival = {0, 0, 0, 2, 4, 9};
        Generator single = new Generator(gpu16, new ByteTokenizer(), MANAGERS.gpu());
        List<BatchRequest> requests = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(maxNew[i]).optStopAtEos(false).build();
            int[] prompt = ModelCheck.prompt(rnd, lengths[i]);
            prompts.add(prompt);
            requests.add(new BatchRequest(prompt, cfg, arrival[i]));
            expected.add(single.generate(prompt, cfg, null).getTokenIds());
        }
        BatchGenerator batch = new BatchGenerator(gpu16, new ByteTokenizer(), MANAGERS.gpu(), 4,
                (mdl, m) -> mdl.newPagedStore(64, 16));
        List<GenerationResult> results = batch.generate(requests, null);
        for (int i = 0; i < lengths.length; i++) {
            ModelCheck.assertSameGreedy("GPU BatchGenerator request " + i + " (" + lengths[i] + "-token prompt, "
                    + maxNew[i] + " new, arrives at step " + arrival[i] + ")", cpu32, cpu16, MANAGERS.cpu(),
                    prompts.get(i), expected.get(i), results.get(i).getTokenIds(), seeds(seed));
        }
        BatchGenerator.Stats s = batch.getLastStats();
        assertEquals(4, s.getMaxRunning(), "most requests decoded together (4 slots)");
        assertTrue(s.getSteps() < s.getTokens(), "no batching happened: " + s.getSteps() + " steps for "
                + s.getTokens() + " tokens");
    }

    @Test
    void servingTranslatorOnTheGpuThroughCriteria() throws Exception {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        ServingConfig config = ServingConfig.builder().optDataType("float16").optMaxPromptTokens(64)
                .optMaxNewTokens(16).optMaxRollingBatchSize(4).optMaxNumBatchedTokens(128).build();
        Path dir = ServingModelDir.write(tmp.resolve("served"), checkpoint, config, false);
        String[] texts = new String[6];
        for (int i = 0; i < texts.length; i++) {
            StringBuilder sb = new StringBuilder();
            for (int j = 0, n = 1 + rnd.nextInt(40); j < n; j++) {
                sb.append((char) ('a' + rnd.nextInt(26)));
            }
            texts[i] = sb.toString();
        }
        Generator single = new Generator(gpu16, new ByteTokenizer(), MANAGERS.gpu());
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(12).build(); // greedy, stops at EOS
        try (ZooModel<Input, Output> zoo = Criteria.builder().setTypes(Input.class, Output.class)
                .optModelPath(dir).optDevice(Device.gpu()).build().loadModel()) {
            assertEquals(Device.gpu(), zoo.getNDManager().getDevice(), "the DJL model's device");
            ExecutorService pool = Executors.newFixedThreadPool(texts.length);
            try {
                List<Future<JsonObject>> answers = new ArrayList<>();
                for (String text : texts) {
                    answers.add(pool.submit(() -> {
                        try (Predictor<Input, Output> p = zoo.newPredictor()) {
                            Input in = new Input();
                            in.add("{\"prompt\": \"" + text + "\", \"max_new_tokens\": 12}");
                            Output out = p.predict(in);
                            assertEquals(200, out.getCode(), "HTTP code for prompt '" + text + "': "
                                    + out.getMessage() + " " + out.getData().getAsString());
                            return JsonParser.parseString(out.getData().getAsString()).getAsJsonObject();
                        }
                    }));
                }
                for (int i = 0; i < texts.length; i++) {
                    int[] prompt = single.promptIds(texts[i], cfg);
                    JsonArray ids = answers.get(i).get(120, TimeUnit.SECONDS).getAsJsonArray("token_ids");
                    int[] got = new int[ids.size()];
                    for (int j = 0; j < got.length; j++) {
                        got[j] = ids.get(j).getAsInt();
                    }
                    ModelCheck.assertSameGreedy("serving on the GPU, prompt '" + texts[i] + "'", cpu32, cpu16,
                            MANAGERS.cpu(), prompt, single.generate(prompt, cfg, null).getTokenIds(), got, seeds(seed));
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
