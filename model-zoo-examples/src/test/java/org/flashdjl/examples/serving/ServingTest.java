package org.flashdjl.examples.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The serving model directory loads through {@code Criteria} exactly as DJL Serving loads it (model path only;
 * engine, block factory, translator factory and limits from {@code serving.properties}); concurrent requests
 * give the single-threaded answers with flat memory; client errors are 400 answers with a message.
 */
class ServingTest {

    @TempDir
    static Path tmp;

    static ZooModel<Input, Output> model;

    @BeforeAll
    static void load() throws Exception {
        Path ckpt = TinyModels.write(tmp.resolve("ckpt"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.BF16, 23);
        Path dir = ServingModelDir.write(tmp.resolve("llama-serving"), ckpt, false, 40, 16);
        assertTrue(Files.readString(dir.resolve("serving.properties")).contains("option.hasParameter=false"));
        Criteria<Input, Output> criteria = Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir)
                .build();
        model = criteria.loadModel();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static Output predict(Predictor<Input, Output> p, String body) throws Exception {
        Input in = new Input();
        in.add(body);
        return p.predict(in);
    }

    private static JsonObject json(Output out) {
        return JsonParser.parseString(out.getData().getAsString()).getAsJsonObject();
    }

    private static String request(int i) {
        String prompt = "request " + i + " " + "abcdefgh".substring(0, i % 8);
        if (i % 3 == 0) {
            return "{\"prompt\": \"" + prompt + "\", \"max_new_tokens\": " + (2 + i % 5) + ", \"temperature\": 0.9,"
                    + " \"top_k\": 20, \"seed\": " + i + "}";
        }
        if (i % 3 == 1) {
            return "{\"inputs\": \"" + prompt + "\", \"parameters\": {\"max_new_tokens\": " + (2 + i % 5) + "}}";
        }
        return "{\"prompt\": \"" + prompt + "\", \"max_new_tokens\": " + (2 + i % 5) + "}";
    }

    @Test
    void answersJson() throws Exception {
        try (Predictor<Input, Output> p = model.newPredictor()) {
            Output out = predict(p, "{\"prompt\": \"Hello\", \"max_new_tokens\": 5}");
            assertEquals(200, out.getCode());
            JsonObject o = json(out);
            assertEquals(5, o.get("generated_tokens").getAsInt());
            assertEquals(6, o.get("prompt_tokens").getAsInt()); // BOS + 5 bytes
            assertEquals("length", o.get("finish_reason").getAsString());
            assertEquals(5, o.getAsJsonArray("token_ids").size());
            assertTrue(o.has("generated_text"));
        }
    }

    @Test
    void clientErrorsAre400WithAMessage() throws Exception {
        String longPrompt = "x".repeat(100);
        String[][] cases = {
            {"not json at all", "not valid JSON"},
            {"[1, 2]", "must be a JSON object"},
            {"{\"max_new_tokens\": 3}", "missing \\\"prompt\\\""},
            {"{\"prompt\": 42}", "must be a string"},
            {"{\"prompt\": \"" + longPrompt + "\"}", "101 tokens; this model accepts at most 40"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 17}", "exceeds this model's limit of 16"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 0}", "must be >= 1"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": \"many\"}", "must be a number"},
            {"{\"prompt\": \"hi\", \"temperature\": -1}", "temperature"},
            {"{\"prompt\": \"hi\", \"top_p\": 1.5}", "top_p"},
            {"", "empty request body"},
        };
        try (Predictor<Input, Output> p = model.newPredictor()) {
            for (String[] c : cases) {
                Output out = predict(p, c[0]);
                assertEquals(400, out.getCode(), c[0]);
                String body = out.getData().getAsString();
                JsonObject o = JsonParser.parseString(body).getAsJsonObject();
                assertEquals(400, o.get("code").getAsInt());
                assertTrue(body.contains(c[1]), c[0] + " -> " + body);
                assertFalse(body.contains("Exception") || body.contains("\tat "), "stack trace leaked: " + body);
            }
            // and the predictor still works after errors
            assertEquals(200, predict(p, request(1)).getCode());
        }
    }

    @Test
    void concurrentRequestsEqualSingleThreadedOnesWithFlatMemory() throws Exception {
        int threads = 8;
        int perThread = 20;
        int distinct = 24;
        String[] expected = new String[distinct];
        try (Predictor<Input, Output> p = model.newPredictor()) {
            for (int i = 0; i < distinct; i++) {
                Output out = predict(p, request(i));
                assertEquals(200, out.getCode());
                expected[i] = out.getData().getAsString();
            }
        }
        Runtime rt = Runtime.getRuntime();
        long[] rssBefore = {rss()};
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int thread = t;
                futures.add(pool.submit(() -> {
                    int ok = 0;
                    try (Predictor<Input, Output> p = model.newPredictor()) {
                        for (int r = 0; r < perThread; r++) {
                            int i = (thread * 7 + r) % distinct;
                            Output out = predict(p, request(i));
                            assertEquals(200, out.getCode());
                            assertEquals(expected[i], out.getData().getAsString(), "request " + i);
                            ok++;
                        }
                    }
                    return ok;
                }));
            }
            int total = 0;
            for (Future<Integer> f : futures) {
                total += f.get();
            }
            assertEquals(threads * perThread, total);
        } finally {
            pool.shutdown();
        }
        // Memory flat: a second round of the same load must not grow the process much beyond the first.
        long afterFirst = rss();
        ExecutorService pool2 = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int thread = t;
                futures.add(pool2.submit(() -> {
                    try (Predictor<Input, Output> p = model.newPredictor()) {
                        for (int r = 0; r < perThread; r++) {
                            predict(p, request((thread + r) % distinct));
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool2.shutdown();
        }
        long afterSecond = rss();
        assertTrue(afterSecond - afterFirst < 64L << 20, "RSS grew " + ((afterSecond - afterFirst) >> 20)
                + " MiB over a second round of 160 requests (first round: " + ((afterFirst - rssBefore[0]) >> 20)
                + " MiB, heap " + ((rt.totalMemory() - rt.freeMemory()) >> 20) + " MiB)");
    }

    // Resident set size of this process (native tensors included), from /proc.
    private static long rss() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return 0;
    }
}
