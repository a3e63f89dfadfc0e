package org.flashdjl.tests.serving;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.serving.LlamaServingTranslator;
import org.flashdjl.examples.serving.ServingConfig;
import org.flashdjl.examples.serving.ServingModelDir;
import org.flashdjl.tests.bench.ServingLoad;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The serving handler under load, in process, with the demo model: 64 concurrent clients x 10 requests of mixed
 * prompt and output lengths, half streamed, give every request its single-request answer, several times faster
 * than one request at a time; 1000 requests of 100 tokens leave the model manager's array count and the RSS flat.
 * (docs/PERF.md has the benchmark's figures: {@code ServingLoadBench}.)
 */
class ServingLoadTest {

    @TempDir
    Path tmp;

    private ZooModel<Input, Output> load(ServingConfig config) throws Exception {
        Path ckpt = DemoCheckpoint.ensure(tmp.resolve("demo"));
        Path dir = ServingModelDir.write(tmp.resolve("served"), ckpt, config, false);
        return Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir).build().loadModel();
    }

    @Test
    void sixtyFourClientsGetTheirSingleRequestAnswersFasterThanOneAtATime() throws Exception {
        long seed = 15;
        ServingConfig config = ServingConfig.builder().optMaxPromptTokens(72).optMaxNewTokens(16)
                .optMaxRollingBatchSize(64).optMaxNumBatchedTokens(512).build();
        try (ZooModel<Input, Output> zoo = load(config)) {
            List<ServingLoad.Request> pool = ServingLoad.mixedRequests(64, 64, 16, seed);
            ServingLoad.run(zoo, pool.subList(0, 2), 1); // loads the weights
            ServingLoad.Result single = ServingLoad.run(zoo, pool, 1);
            List<ServingLoad.Request> load = new ArrayList<>();
            for (int i = 0; i < 640; i++) {
                load.add(pool.get((i * 7) % pool.size()).withStream(i % 2 == 1));
            }
            ServingLoad.Result loaded = ServingLoad.run(zoo, load, 64);
            for (int i = 0; i < load.size(); i++) {
                assertEquals(200, loaded.codes[i], "request " + i);
                assertArrayEquals(single.tokens[(i * 7) % pool.size()], loaded.tokens[i], "request " + i + " (seed "
                        + seed + ", streamed " + load.get(i).isStream() + ")");
            }
            double speedup = loaded.tokensPerSecond() / single.tokensPerSecond();
            String report = "one at a time: " + single + "\n64 clients: " + loaded + "\nspeedup " + speedup + "\n"
                    + ((LlamaServingTranslator) zoo.getTranslator()).getStats();
            System.out.println(report);
            assertTrue(!Double.isNaN(ServingLoad.Result.percentileMillis(loaded.ttftNanos, 50))
                    && !Double.isNaN(ServingLoad.Result.percentileMillis(loaded.tpotNanos, 50)), report);
            // the benchmark's target is 5x; a shared, noisy CI machine gets a margin
            assertTrue(speedup >= 3, "rolling batching is only " + speedup + "x one request at a time\n" + report);
        }
    }

    // Failed before the ownership fix (issue 11, finding 2): the packed forward left ~4 arrays per generated token
    // on the model's manager (79,071 -> 405,583 arrays and RSS 719 -> 1,156 MiB over these 800 requests).
    @Test
    void aThousandRequestsOfHundredTokensLeaveArraysAndRssFlat() throws Exception {
        ServingConfig config = ServingConfig.builder().optMaxPromptTokens(64).optMaxNewTokens(100)
                .optMaxRollingBatchSize(32).optMaxNumBatchedTokens(256).build();
        try (ZooModel<Input, Output> zoo = load(config)) {
            List<ServingLoad.Request> pool = new ArrayList<>();
            for (ServingLoad.Request r : ServingLoad.mixedRequests(50, 48, 100, 3)) {
                pool.add(r);
            }
            List<ServingLoad.Request> round = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                ServingLoad.Request r = pool.get(i % pool.size());
                round.add(new ServingLoad.Request(promptOf(r), 100, i % 2 == 0));
            }
            ServingLoad.run(zoo, round, 32); // warm-up: 200 requests, every buffer at its size
            int arrays = ServingLoad.managedArrays(zoo);
            long[] rss = new long[5]; // after the warm-up and after each round of 200, the heap collected first
            rss[0] = settledRss();
            long tokens = 0;
            for (int k = 0; k < 4; k++) { // 800 more
                ServingLoad.Result r = ServingLoad.run(zoo, round, 32);
                for (int c : r.codes) {
                    assertEquals(200, c);
                }
                tokens += r.outputTokens();
                rss[k + 1] = settledRss();
            }
            int arraysAfter = ServingLoad.managedArrays(zoo);
            StringBuilder trace = new StringBuilder();
            for (long v : rss) {
                trace.append(trace.length() == 0 ? "" : " -> ").append(v >> 20);
            }
            // A leak grows every round; the allocators' and the JIT's one-time growth settles in the first rounds:
            // judge the last two rounds (400 requests, 40k tokens).
            long growth = rss[4] - rss[2];
            String report = "model manager arrays " + arrays + " -> " + arraysAfter + ", RSS " + trace + " MiB after"
                    + " each round of 200 requests (" + tokens + " tokens after 200 of warm-up); last two rounds: "
                    + (growth >> 20) + " MiB";
            System.out.println(report);
            assertTrue(tokens > 800 * 90, report);
            assertEquals(arrays, arraysAfter, report);
            assertTrue(growth < 32L << 20, report);
        }
    }

    // RSS after a collection, so a heap that has grown but holds garbage is not counted as a leak.
    private static long settledRss() throws Exception {
        System.gc();
        Thread.sleep(200);
        return ServingLoad.rssBytes();
    }

    private static String promptOf(ServingLoad.Request r) {
        String body = r.body();
        return com.google.gson.JsonParser.parseString(body).getAsJsonObject().get("prompt").getAsString();
    }
}
