package org.flashdjl.tests.bench;

import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.ChunkedBytesSupplier;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.repository.zoo.ZooModel;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * An in-process load generator for a served FlashDJL model (a {@code ZooModel<Input, Output>} loaded from a serving
 * directory): clients on their own threads, each with its own {@code Predictor}, send requests back to back, as DJL
 * Serving's workers would, no network in between. Used by {@code ServingLoadBench} and the bounded CI test.
 *
 * <p>Every answer is reduced to its generated token ids (streamed or not), so answers can be compared with the
 * single-request answers; time to first token is measured on streamed requests (the first chunk), time per output
 * token as (last chunk - first chunk) / (tokens - 1).
 */
public final class ServingLoad {

    private ServingLoad() {}

    /** One request of a load: its body and whether it is streamed. */
    public static final class Request {
        private final String prompt;
        private final int maxNewTokens;
        private final boolean stream;

        /**
         * Creates a greedy request.
         *
         * @param prompt the prompt text (ASCII letters and spaces)
         * @param maxNewTokens its max_new_tokens
         * @param stream whether tokens are streamed
         */
        public Request(String prompt, int maxNewTokens, boolean stream) {
            this.prompt = prompt;
            this.maxNewTokens = maxNewTokens;
            this.stream = stream;
        }

        /** @return the JSON body */
        public String body() {
            JsonObject o = new JsonObject();
            o.addProperty("prompt", prompt);
            o.addProperty("max_new_tokens", maxNewTokens);
            if (stream) {
                o.addProperty("stream", true);
            }
            return o.toString();
        }

        /** @return the same request, streamed or not */
        public Request withStream(boolean s) {
            return new Request(prompt, maxNewTokens, s);
        }

        /** @return whether it is streamed */
        public boolean isStream() {
            return stream;
        }
    }

    /**
     * Makes a pool of distinct greedy requests of mixed prompt and output lengths.
     *
     * @param n how many
     * @param maxPromptChars the longest prompt, in characters
     * @param maxNewTokens the largest max_new_tokens
     * @param seed the seed of the lengths and letters
     * @return the requests (not streamed)
     */
    public static List<Request> mixedRequests(int n, int maxPromptChars, int maxNewTokens, long seed) {
        Random rnd = new Random(seed);
        List<Request> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = i % 8 == 0 ? maxPromptChars / 2 + rnd.nextInt(maxPromptChars / 2) : 1 + rnd.nextInt(
                    Math.max(1, maxPromptChars / 4));
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j < len; j++) {
                sb.append(j % 6 == 5 ? ' ' : (char) ('a' + rnd.nextInt(26)));
            }
            int maxNew = i % 4 == 0 ? maxNewTokens : 1 + rnd.nextInt(maxNewTokens);
            out.add(new Request(sb.toString(), maxNew, false));
        }
        return out;
    }

    /** What a load run measured. */
    public static final class Result {
        /** Token ids of each answer, by request index; null where the answer was not 200. */
        public final int[][] tokens;
        /** The HTTP-like code of each answer. */
        public final int[] codes;
        /** Time to first token of each streamed request (ns), -1 otherwise. */
        public final long[] ttftNanos;
        /** Time per output token after the first, each streamed request with 2+ tokens (ns), -1 otherwise. */
        public final long[] tpotNanos;
        /** Wall time of the run (ns). */
        public final long wallNanos;

        Result(int n, long wallNanos) {
            this.tokens = new int[n][];
            this.codes = new int[n];
            this.ttftNanos = new long[n];
            this.tpotNanos = new long[n];
            Arrays.fill(ttftNanos, -1);
            Arrays.fill(tpotNanos, -1);
            this.wallNanos = wallNanos;
        }

        /** @return generated tokens over all answers */
        public long outputTokens() {
            long t = 0;
            for (int[] a : tokens) {
                t += a == null ? 0 : a.length;
            }
            return t;
        }

        /** @return output tokens per second of wall time */
        public double tokensPerSecond() {
            return outputTokens() / (wallNanos / 1e9);
        }

        /**
         * Returns a percentile of measured values, in milliseconds.
         *
         * @param nanos the values (-1 = not measured)
         * @param p the percentile in [0, 100]
         * @return the value (nearest rank), NaN when none was measured
         */
        public static double percentileMillis(long[] nanos, double p) {
            List<Long> v = new ArrayList<>();
            for (long x : nanos) {
                if (x >= 0) {
                    v.add(x);
                }
            }
            if (v.isEmpty()) {
                return Double.NaN;
            }
            Collections.sort(v);
            int rank = (int) Math.ceil(p / 100 * v.size());
            return v.get(Math.max(0, Math.min(v.size() - 1, rank - 1))) / 1e6;
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            String head = String.format(Locale.ROOT, "%d answers, %d output tokens in %.2f s: %.1f tokens/s",
                    codes.length, outputTokens(), wallNanos / 1e9, tokensPerSecond());
            double ttft = percentileMillis(ttftNanos, 50);
            if (Double.isNaN(ttft)) {
                return head + " (no streamed request: no TTFT)";
            }
            return head + String.format(Locale.ROOT, "; TTFT p50 %.1f ms p99 %.1f ms; per output token p50 %.2f ms"
                    + " p99 %.2f ms", ttft, percentileMillis(ttftNanos, 99), percentileMillis(tpotNanos, 50),
                    percentileMillis(tpotNanos, 99));
        }
    }

    /**
     * Runs a load: {@code clients} threads share the request list (request i goes to client i % clients, in
     * order), all starting together.
     *
     * @param model the served model
     * @param requests the requests
     * @param clients concurrent clients
     * @return the measurements
     * @throws Exception if a client fails outside an answer (an answer's code is recorded, not thrown)
     */
    public static Result run(ZooModel<Input, Output> model, List<Request> requests, int clients) throws Exception {
        int n = requests.size();
        long[][] times = new long[n][];
        int[][] tokens = new int[n][];
        int[] codes = new int[n];
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> futures = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            final int client = c;
            futures.add(pool.submit(() -> {
                start.await();
                try (Predictor<Input, Output> p = model.newPredictor()) {
                    for (int i = client; i < n; i += clients) {
                        long t0 = System.nanoTime();
                        Input in = new Input();
                        in.add(requests.get(i).body());
                        Output out = p.predict(in);
                        codes[i] = out.getCode();
                        if (out.getCode() != 200) {
                            continue;
                        }
                        if (out.getData() instanceof ChunkedBytesSupplier) {
                            long[] t = readStream((ChunkedBytesSupplier) out.getData(), t0);
                            tokens[i] = new int[t.length - 2];
                            for (int k = 2; k < t.length; k++) {
                                tokens[i][k - 2] = (int) t[k];
                            }
                            times[i] = new long[] {t[0], t[1]};
                        } else {
                            JsonArray a = JsonParser.parseString(out.getData().getAsString()).getAsJsonObject()
                                    .getAsJsonArray("token_ids");
                            tokens[i] = new int[a.size()];
                            for (int k = 0; k < a.size(); k++) {
                                tokens[i][k] = a.get(k).getAsInt();
                            }
                        }
                    }
                }
                return null;
            }));
        }
        long t0 = System.nanoTime();
        start.countDown();
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        Result r = new Result(n, System.nanoTime() - t0);
        for (int i = 0; i < n; i++) {
            r.codes[i] = codes[i];
            r.tokens[i] = tokens[i];
            if (times[i] != null) {
                r.ttftNanos[i] = times[i][0];
                if (tokens[i].length > 1) {
                    r.tpotNanos[i] = (times[i][1] - times[i][0]) / (tokens[i].length - 1);
                }
            }
        }
        return r;
    }

    // Reads a streamed answer: [first token time, last token time, token ids...] (times from t0).
    private static long[] readStream(ChunkedBytesSupplier data, long t0) throws InterruptedException {
        List<Long> out = new ArrayList<>();
        long first = -1;
        long last = -1;
        StringBuilder pending = new StringBuilder();
        while (data.hasNext()) {
            pending.append(new String(data.nextChunk(5, TimeUnit.MINUTES), StandardCharsets.UTF_8));
            int nl;
            while ((nl = pending.indexOf("\n")) >= 0) {
                String line = pending.substring(0, nl);
                pending.delete(0, nl + 1);
                JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                if (o.has("token_id")) {
                    long now = System.nanoTime() - t0;
                    first = first < 0 ? now : first;
                    last = now;
                    out.add(o.get("token_id").getAsLong());
                } else if (!o.has("finish_reason") || "error".equals(o.get("finish_reason").getAsString())) {
                    throw new IllegalStateException("stream ended badly: " + line);
                }
            }
        }
        long[] r = new long[out.size() + 2];
        r[0] = first;
        r[1] = last;
        for (int i = 0; i < out.size(); i++) {
            r[i + 2] = out.get(i);
        }
        return r;
    }

    /**
     * Counts the NDArrays under a manager tree (what a leak grows).
     *
     * @param model the served model
     * @return the arrays held by its manager and every sub-manager and resource under it
     */
    public static int managedArrays(ZooModel<Input, Output> model) {
        return model.getNDManager().getManagedArrays().size();
    }

    /**
     * Returns this process's resident set size.
     *
     * @return bytes (native tensors included), from /proc/self/status
     * @throws java.io.IOException if /proc cannot be read
     */
    public static long rssBytes() throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new java.io.IOException("no VmRSS in /proc/self/status");
    }
}
