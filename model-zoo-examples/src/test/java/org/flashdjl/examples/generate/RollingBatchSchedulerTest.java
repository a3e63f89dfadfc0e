package org.flashdjl.examples.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Rolling batching for concurrent callers: every request equals its single-stream {@link Generator} result (greedy
 * and seeded sampling, chunked prefill), admission waits and rejects with the reason, cancellation and time limits
 * return the pages, one failing listener leaves the other requests alone.
 */
class RollingBatchSchedulerTest {

    @TempDir
    static Path tmp;

    static NDManager manager;
    static LlamaModel model;
    static final ByteTokenizer TOKENIZER = new ByteTokenizer();

    @BeforeAll
    static void load() throws Exception {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F32, 29);
        manager = NDManager.newBaseManager();
        model = LlamaLoader.load(dir, manager, AttentionOptions.builder().optBackend("online").build(),
                DataType.FLOAT32);
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    private static RollingBatchScheduler.Builder scheduler() {
        return RollingBatchScheduler.builder().setModel(model).setTokenizer(TOKENIZER).setManager(manager);
    }

    private static GenerationConfig config(int maxNew, boolean sampled, long seed) {
        GenerationConfig.Builder b = GenerationConfig.builder().optMaxNewTokens(maxNew).optStopAtEos(false);
        if (sampled) {
            b.optTemperature(0.8f).optTopK(40).optTopP(0.95f).optSeed(seed);
        }
        return b.build();
    }

    @Test
    void concurrentRequestsEqualSingleStreamGenerationWithChunkedPrefill() throws Exception {
        long seed = 4242;
        Random rnd = new Random(seed);
        Generator single = new Generator(model, TOKENIZER, manager);
        int n = 24;
        int[][] prompts = new int[n][];
        GenerationConfig[] configs = new GenerationConfig[n];
        int[][] expected = new int[n][];
        for (int i = 0; i < n; i++) {
            StringBuilder sb = new StringBuilder();
            int len = i % 5 == 0 ? 30 + rnd.nextInt(20) : 1 + rnd.nextInt(8); // some prompts exceed the budget
            for (int j = 0; j < len; j++) {
                sb.append((char) ('a' + rnd.nextInt(26)));
            }
            configs[i] = config(1 + rnd.nextInt(12), i % 3 == 0, 100 + i);
            prompts[i] = single.promptIds(sb.toString(), configs[i]);
            expected[i] = single.generate(prompts[i], configs[i], null).getTokenIds();
        }
        // budget 12 tokens per step, at most 5 sequences: long prompts are chunked, requests wait for slots
        try (RollingBatchScheduler s = scheduler().optMaxRollingBatchSize(5).optMaxNumBatchedTokens(12)
                .optKvCache(64, 4).build()) {
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<int[]>> futures = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    final int idx = i;
                    futures.add(pool.submit(() -> {
                        start.await();
                        List<Integer> streamed = new ArrayList<>();
                        GenerationResult r = s.submit(prompts[idx], configs[idx], e -> streamed.add(e.getTokenId()))
                                .await();
                        int[] ids = r.getTokenIds();
                        assertEquals(ids.length, streamed.size(), "request " + idx + ": streamed tokens");
                        for (int k = 0; k < ids.length; k++) {
                            assertEquals(ids[k], streamed.get(k), "request " + idx + " token " + k);
                        }
                        return ids;
                    }));
                }
                start.countDown();
                for (int i = 0; i < n; i++) {
                    assertArrayEquals(expected[i], futures.get(i).get(60, TimeUnit.SECONDS),
                            "request " + i + " (seed " + seed + ", " + configs[i] + ")");
                }
            } finally {
                pool.shutdownNow();
            }
            RollingBatchScheduler.Stats st = s.getStats();
            long tokens = 0;
            for (int[] e : expected) {
                tokens += e.length;
            }
            assertEquals(tokens, st.getTokens());
            assertTrue(st.getMaxRunning() > 1, "no batching: " + st);
            assertTrue(st.getSteps() < tokens, "no batching: " + st);
            awaitIdle(s);
            assertEquals(64, s.getStats().getFreePages(), "pages not returned: " + s.getStats());
        }
    }

    private static void awaitIdle(RollingBatchScheduler s) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((s.getStats().getRunning() > 0 || s.getStats().getWaiting() > 0) && System.nanoTime() < end) {
            Thread.sleep(5);
        }
    }

    @Test
    void aRequestThatCannotBeAdmittedIsRejectedWithTheReasonAndCancelFreesPages() throws Exception {
        // the first request must outlive the second's 100 ms admission wait by far: 150 tokens of the tiny model
        // took under 100 ms on a fast machine (it ended with LENGTH before the cancel), 1500 take ~10 times as long
        // and are cancelled long before their end
        try (RollingBatchScheduler s = scheduler().optMaxRollingBatchSize(1).optMaxNumBatchedTokens(8)
                .optKvCache(400, 4).optAdmissionTimeoutMillis(100).build()) {
            int[] prompt = {ByteTokenizer.BOS, 'a', 'b'};
            CountDownLatch running = new CountDownLatch(1);
            GenerationHandle first = s.submit(prompt, config(1500, false, 0), e -> running.countDown());
            assertTrue(running.await(30, TimeUnit.SECONDS));
            GenerationHandle second = s.submit(prompt, config(4, false, 0), null);
            GenerationRejectedException e = assertThrows(GenerationRejectedException.class, second::await);
            assertTrue(e.getMessage().contains("1 of 1 sequences running (max_rolling_batch_size)"), e.getMessage());
            assertTrue(e.getMessage().contains("waited"), e.getMessage());
            assertEquals(1, s.getStats().getRejected());
            assertTrue(first.cancel());
            GenerationResult r = first.await(30, TimeUnit.SECONDS);
            assertEquals(GenerationResult.FinishReason.CANCELLED, r.getFinishReason());
            assertTrue(r.getTokenIds().length < 1500, "cancel came too late: " + r.getTokenIds().length);
            awaitIdle(s);
            assertEquals(400, s.getStats().getFreePages(), s.getStats().toString());
            assertEquals(0, s.getStats().getCommittedPages());
            // and the scheduler still serves
            Generator single = new Generator(model, TOKENIZER, manager);
            assertArrayEquals(single.generate(prompt, config(4, false, 0), null).getTokenIds(),
                    s.submit(prompt, config(4, false, 0), null).await().getTokenIds());
        }
    }

    @Test
    void aTimeLimitEndsTheRequestAndFreesItsPages() throws Exception {
        try (RollingBatchScheduler s = scheduler().optKvCache(64, 4).build()) {
            int[] prompt = {ByteTokenizer.BOS, 'x'};
            // each token takes at least 1 ms (the listener runs on the generating thread), so 200 tokens cannot end
            // inside the 30 ms limit however fast the machine
            GenerationListener slow = e -> {
                long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1);
                for (long left = end - System.nanoTime(); left > 0; left = end - System.nanoTime()) {
                    LockSupport.parkNanos(left);
                }
            };
            GenerationResult r = s.submit(prompt, config(200, false, 0), slow, 30).await(30, TimeUnit.SECONDS);
            assertEquals(GenerationResult.FinishReason.TIMEOUT, r.getFinishReason());
            assertTrue(r.getTokenIds().length < 200, "ran to the end: " + r.getTokenIds().length);
            awaitIdle(s);
            assertEquals(64, s.getStats().getFreePages(), s.getStats().toString());
        }
    }

    @Test
    void aFailingListenerEndsOnlyItsOwnRequest() throws Exception {
        Generator single = new Generator(model, TOKENIZER, manager);
        try (RollingBatchScheduler s = scheduler().optKvCache(64, 4).build()) {
            int[] p1 = single.promptIds("hello", config(1, false, 0));
            int[] p2 = single.promptIds("world", config(1, false, 0));
            GenerationHandle bad = s.submit(p1, config(20, false, 0), e -> {
                if (e.getIndex() == 3) {
                    throw new IllegalStateException("client went away");
                }
            });
            GenerationHandle good = s.submit(p2, config(20, false, 0), null);
            IllegalStateException e = assertThrows(IllegalStateException.class, bad::await);
            assertTrue(e.getMessage().contains("client went away"), e.getMessage());
            assertArrayEquals(single.generate(p2, config(20, false, 0), null).getTokenIds(),
                    good.await().getTokenIds());
            awaitIdle(s);
            assertEquals(64, s.getStats().getFreePages(), s.getStats().toString());
        }
    }

    @Test
    void requestsThatCanNeverRunAreRefusedAtSubmit() {
        try (RollingBatchScheduler s = scheduler().optKvCache(8, 4).build()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> s.submit(new int[] {1, 2}, config(40, false, 0), null));
            assertTrue(e.getMessage().contains("needs 11 KV pages") && e.getMessage().contains("the pool has 8"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[] {1, 999}, config(2, false, 0),
                    null));
            assertTrue(e.getMessage().contains("999 is outside the vocabulary [0, 259)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[0], config(2, false, 0), null));
            assertTrue(e.getMessage().contains("empty"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> scheduler().optMaxRollingBatchSize(16).optMaxNumBatchedTokens(8).build());
        assertTrue(e.getMessage().contains("max_num_batched_tokens (8) must be >= max_rolling_batch_size (16)"),
                e.getMessage());
    }
}
