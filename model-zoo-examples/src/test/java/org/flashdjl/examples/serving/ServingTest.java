package org.flashdjl.examples.serving;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.ChunkedBytesSupplier;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.generate.RollingBatchScheduler;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The serving model directory loads through {@code Criteria} exactly as DJL Serving loads it (model path only;
 * engine, block factory, translator and limits from {@code serving.properties}); concurrent requests join one
 * rolling batch and give the single-stream answers; streamed answers carry the same tokens; client errors are 400
 * answers with a message, a full batch 503 with the reason; bad limits fail the load.
 */
class ServingTest {

    @TempDir
    static Path tmp;

    static Path ckpt;
    static ZooModel<Input, Output> model;

    @BeforeAll
    static void load() throws Exception {
        ckpt = TinyModels.write(tmp.resolve("ckpt"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.BF16, 23);
        model = load(ServingConfig.builder().optMaxPromptTokens(40).optMaxNewTokens(16).optMaxRollingBatchSize(6)
                .optMaxNumBatchedTokens(16).build(), "llama-serving");
    }

    static ZooModel<Input, Output> load(ServingConfig config, String name) throws Exception {
        Path dir = ServingModelDir.write(tmp.resolve(name), ckpt, config);
        return Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir).build().loadModel();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static Output predict(Predictor<Input, Output> p, String body) throws Exception {
        Input in = new Input();
        in.add(body);
        return p.predict(in);
    }

    static JsonObject json(Output out) {
        return JsonParser.parseString(out.getData().getAsString()).getAsJsonObject();
    }

    static String request(int i) {
        String prompt = "request " + i + " " + "abcdefghijklmnopqrstuvwxyz".substring(0, (i * 7) % 27);
        if (i % 3 == 0) {
            return "{\"prompt\": \"" + prompt + "\", \"max_new_tokens\": " + (2 + i % 9) + ", \"temperature\": 0.9,"
                    + " \"top_k\": 20, \"seed\": " + i + "}";
        }
        if (i % 3 == 1) {
            return "{\"inputs\": \"" + prompt + "\", \"parameters\": {\"max_new_tokens\": " + (2 + i % 9) + "}}";
        }
        return "{\"prompt\": \"" + prompt + "\", \"max_new_tokens\": " + (2 + i % 9) + "}";
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
    void greedyAnswersEqualSingleStreamGeneration() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel reference = LlamaLoader.load(ckpt, m, AttentionOptions.builder().optBackend("math").build(),
                    DataType.FLOAT32);
            Generator gen = new Generator(reference, new ByteTokenizer(), m);
            try (Predictor<Input, Output> p = model.newPredictor()) {
                for (String prompt : new String[] {"Hello", "a", "The quick brown fox jumps over"}) {
                    GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(16).build();
                    int[] expected = gen.generate(prompt, cfg, null).getTokenIds();
                    JsonObject o = json(predict(p, "{\"prompt\": \"" + prompt + "\", \"max_new_tokens\": 16}"));
                    assertArrayEquals(expected, ids(o.getAsJsonArray("token_ids")), prompt);
                }
            }
        }
    }

    static int[] ids(JsonArray a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).getAsInt();
        }
        return r;
    }

    @Test
    void streamedTokensEqualTheWholeAnswer() throws Exception {
        try (Predictor<Input, Output> p = model.newPredictor()) {
            for (int i = 0; i < 6; i++) {
                JsonObject whole = json(predict(p, request(i)));
                String body = request(i).substring(0, request(i).length() - 1) + ", \"stream\": true}";
                Output out = predict(p, body);
                assertEquals(200, out.getCode(), body);
                assertEquals("application/jsonlines", out.getProperty("Content-Type", null));
                ChunkedBytesSupplier data = assertInstanceOf(ChunkedBytesSupplier.class, out.getData());
                List<JsonObject> lines = readLines(data);
                JsonObject last = lines.get(lines.size() - 1);
                JsonArray tokens = new JsonArray();
                StringBuilder text = new StringBuilder();
                for (JsonObject l : lines.subList(0, lines.size() - 1)) {
                    assertEquals(tokens.size() + 1, l.get("index").getAsInt());
                    tokens.add(l.get("token_id").getAsInt());
                    text.append(l.get("text").getAsString());
                }
                text.append(last.get("text").getAsString());
                assertEquals(whole.getAsJsonArray("token_ids"), tokens, body);
                assertEquals(whole.get("generated_text").getAsString(), text.toString());
                assertEquals(whole.get("generated_text").getAsString(), last.get("generated_text").getAsString());
                assertEquals(whole.get("finish_reason"), last.get("finish_reason"));
                assertEquals(whole.get("prompt_tokens"), last.get("prompt_tokens"));
                assertEquals(whole.get("generated_tokens"), last.get("generated_tokens"));
            }
        }
    }

    static List<JsonObject> readLines(ChunkedBytesSupplier data) throws Exception {
        StringBuilder sb = new StringBuilder();
        while (data.hasNext()) {
            sb.append(new String(data.nextChunk(30, TimeUnit.SECONDS), StandardCharsets.UTF_8));
        }
        List<JsonObject> lines = new ArrayList<>();
        for (String line : sb.toString().split("\n")) {
            if (!line.isEmpty()) {
                lines.add(JsonParser.parseString(line).getAsJsonObject());
            }
        }
        return lines;
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
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 17}", "max_new_tokens 17 exceeds this model's limit of 16"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 2000000000}", "exceeds this model's limit of 16"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 1e300}", "max_new_tokens 1e300 exceeds this model's limit of 16"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 0}", "must be >= 1"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": 2.5}", "must be an integer"},
            {"{\"prompt\": \"hi\", \"max_new_tokens\": \"many\"}", "must be a number"},
            {"{\"prompt\": \"hi\", \"temperature\": -1}", "temperature must be in [0, 100]"},
            {"{\"prompt\": \"hi\", \"temperature\": 1e308}", "temperature must be in [0, 100] (0 = greedy), got 1.0E308"},
            {"{\"prompt\": \"hi\", \"top_p\": 1.5}", "top_p must be in [1.0E-6, 1]"},
            {"{\"prompt\": \"hi\", \"top_p\": 1e-300}", "top_p must be in [1.0E-6, 1] (1 = off), got 1.0E-300"},
            {"{\"prompt\": \"hi\", \"top_k\": -2}", "top_k must be >= 0"},
            {"{\"prompt\": \"hi\", \"seed\": 1e300}", "\\\"seed\\\" is out of range"},
            {"{\"inputs\": \"hi\", \"max_new_tokens\": 4, \"parameters\": {\"temperature\": 0}}",
                "\\\"max_new_tokens\\\" is given at the top level beside a \\\"parameters\\\" object"},
            {"{\"inputs\": \"hi\", \"parameters\": {\"max_tokens\": 4}}", "unknown field \\\"parameters.max_tokens\\\""},
            {"{\"inputs\": \"hi\", \"parameters\": {\"stream\": true}}", "\\\"stream\\\" goes at the top level"},
            {"{\"prompt\": \"hi\", \"maxNewTokens\": 4}", "unknown field \\\"maxNewTokens\\\""},
            {"{\"prompt\": \"hi\", \"inputs\": \"ho\"}", "not both"},
            {"{\"prompt\": \"hi\", \"stream\": \"yes\"}", "\\\"stream\\\" must be true or false"},
            {"{\"prompt\": \"hi\", \"do_sample\": true, \"temperature\": 0}", "do_sample is true but temperature is 0"},
            {"{\"prompt\": \"hi\", \"parameters\": [1]}", "\\\"parameters\\\" must be an object"},
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
    void concurrentRequestsJoinOneBatchAndEqualSingleThreadedOnesWithFlatMemory() throws Exception {
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
        LlamaServingTranslator translator = (LlamaServingTranslator) model.getTranslator();
        long stepsBefore = translator.getStats().getSteps();
        long tokensBefore = translator.getStats().getTokens();
        runConcurrently(threads, perThread, distinct, expected);
        RollingBatchScheduler.Stats st = translator.getStats();
        assertTrue(st.getMaxRunning() > 1, "requests did not share the batch: " + st);
        assertTrue(st.getSteps() - stepsBefore < st.getTokens() - tokensBefore, "no batching: " + st);
        // Memory flat: a second round of the same load must not grow the process much beyond the first.
        long afterFirst = rss();
        runConcurrently(threads, perThread, distinct, expected);
        long afterSecond = rss();
        assertTrue(afterSecond - afterFirst < 64L << 20, "RSS grew " + ((afterSecond - afterFirst) >> 20)
                + " MiB over a second round of 160 requests");
    }

    // threads x perThread requests; a client error every 5th request must not disturb the others
    private static void runConcurrently(int threads, int perThread, int distinct, String[] expected)
            throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int thread = t;
                futures.add(pool.submit(() -> {
                    int ok = 0;
                    try (Predictor<Input, Output> p = model.newPredictor()) {
                        for (int r = 0; r < perThread; r++) {
                            if ((thread + r) % 5 == 0) {
                                assertEquals(400, predict(p, "{\"prompt\": \"x\", \"top_p\": 0}").getCode());
                            }
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
    }

    @Test
    void aFullBatchAnswers503WithTheReasonAndTimeLimitsFreePages() throws Exception {
        ServingConfig c = ServingConfig.builder().optMaxPromptTokens(40).optMaxNewTokens(2000)
                .optMaxRollingBatchSize(1).optAdmissionTimeoutMillis(50).optRequestTimeoutMillis(1000).build();
        try (ZooModel<Input, Output> busy = load(c, "busy");
                Predictor<Input, Output> p1 = busy.newPredictor();
                Predictor<Input, Output> p2 = busy.newPredictor()) {
            Output stream = predict(p1, "{\"prompt\": \"a\", \"max_new_tokens\": 2000, \"stream\": true}");
            assertEquals(200, stream.getCode());
            Output rejected = predict(p2, "{\"prompt\": \"b\", \"max_new_tokens\": 2}");
            assertEquals(503, rejected.getCode());
            String msg = json(rejected).get("error").getAsString();
            assertTrue(msg.contains("1 of 1 sequences running (max_rolling_batch_size)"), msg);
            // the client gives up on the stream: cancelling frees its pages
            assertTrue(((TokenStream) stream.getData()).cancel());
            List<JsonObject> lines = readLines((ChunkedBytesSupplier) stream.getData());
            JsonObject last = lines.get(lines.size() - 1);
            assertEquals("cancelled", last.get("finish_reason").getAsString());
            assertTrue(last.get("generated_tokens").getAsInt() < 2000);
            LlamaServingTranslator t = (LlamaServingTranslator) busy.getTranslator();
            awaitFreePages(t, c.getKvNumPages());
            // a request past request_timeout_ms: 503 with the reason, pages freed
            Output timedOut = predict(p2, "{\"prompt\": \"c\", \"max_new_tokens\": 2000}");
            assertEquals(503, timedOut.getCode());
            assertTrue(json(timedOut).get("error").getAsString().contains("request_timeout_ms 1000 ran out"),
                    json(timedOut).toString());
            awaitFreePages(t, c.getKvNumPages());
            assertEquals(200, predict(p2, "{\"prompt\": \"d\", \"max_new_tokens\": 3}").getCode());
        }
    }

    private static void awaitFreePages(LlamaServingTranslator t, int pages) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getStats().getFreePages() != pages && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        assertEquals(pages, t.getStats().getFreePages(), t.getStats().toString());
    }

    @Test
    void limitsAreCheckedWhenTheDirectoryLoads() throws Exception {
        Path dir = ServingModelDir.write(tmp.resolve("edited"), ckpt, ServingConfig.builder().build());
        String props = Files.readString(dir.resolve("serving.properties"));
        String[][] edits = {
            {"max_new_tokens=128", "max_new_tokens=2000000000", "max_new_tokens=2000000000 is out of range: allowed"
                + " 1..1048576"},
            {"max_num_batched_tokens=512", "max_num_batched_tokens=8",
                "max_num_batched_tokens=8 must be >= max_rolling_batch_size=32"},
            {"kv_page_size=16", "kv_page_size=sixteen", "kv_page_size='sixteen' is not an integer"},
            {"dtype=auto", "dtype=bfloat16", "dtype='bfloat16' is not supported: allowed auto, float32, float16"},
        };
        for (String[] e : edits) {
            assertTrue(props.contains(e[0]), e[0]);
            Files.writeString(dir.resolve("serving.properties"), props.replace(e[0], e[1]));
            Criteria<Input, Output> criteria = Criteria.builder().setTypes(Input.class, Output.class)
                    .optModelPath(dir).build();
            Exception ex = assertThrows(Exception.class, criteria::loadModel, e[1]);
            StringBuilder chain = new StringBuilder();
            for (Throwable c = ex; c != null; c = c.getCause()) {
                chain.append(c.getMessage()).append(" | ");
            }
            assertTrue(chain.toString().contains(e[2]), e[1] + " -> " + chain);
        }
        // positions: checked on the first request (the weights load then), answered 500 with the reason
        Files.writeString(dir.resolve("serving.properties"), props.replace("max_new_tokens=128",
                "max_new_tokens=4000"));
        try (ZooModel<Input, Output> m = Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir)
                .build().loadModel(); Predictor<Input, Output> p = m.newPredictor()) {
            Output out = predict(p, "{\"prompt\": \"hi\"}");
            assertEquals(500, out.getCode());
            assertTrue(out.getData().getAsString().contains("exceed the model's max_position_embeddings 2048"),
                    out.getData().getAsString());
        }
    }

    // Resident set size of this process (native tensors included), from /proc.
    static long rss() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
