package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.StreamingDecoder;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.function.BiFunction;

/**
 * Continuous batching: many prompts decoded together over one {@link SequenceKvStore} (contiguous by default;
 * {@code (m, mgr) -> m.newPagedStore(pages, pageSize)} for {@code PagedKvCache}). Each step packs, for
 * every running sequence, its pending tokens (a newly admitted sequence's whole prompt, otherwise its last
 * token) and runs one varlen forward pass; sequences join when they arrive and a slot is free
 * ({@code maxBatch}) and leave as soon as they finish (EOS or their own max new tokens), their storage freed.
 * Results equal single-stream {@link Generator} results token for token.
 */
public final class BatchGenerator {

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final NDManager manager;
    private final int maxBatch;
    private final BiFunction<LlamaModel, NDManager, SequenceKvStore> storeFactory;

    /** Statistics of one {@link #generate} call. */
    public static final class Stats {
        private int steps;
        private int maxRunning;
        private long tokens;
        private long nanos;
        private long peakKvBytes;

        /** @return the number of batched forward passes */
        public int getSteps() {
            return steps;
        }

        /** @return the most sequences in one step */
        public int getMaxRunning() {
            return maxRunning;
        }

        /** @return the generated tokens, all sequences */
        public long getTokens() {
            return tokens;
        }

        /** @return wall time in nanoseconds */
        public long getNanos() {
            return nanos;
        }

        /** @return the peak KV storage in bytes */
        public long getPeakKvBytes() {
            return peakKvBytes;
        }
    }

    private final Stats lastStats = new Stats();

    private static final class Running {
        final long id;
        final BatchRequest request;
        final Sampler sampler;
        final StreamingDecoder decoder;
        final StringBuilder text = new StringBuilder();
        final List<Integer> out = new ArrayList<>();
        final long start = System.nanoTime();
        long firstTokenNanos;
        int[] pending;
        GenerationResult.FinishReason reason;

        Running(long id, BatchRequest request, StreamingDecoder decoder) {
            this.id = id;
            this.request = request;
            this.sampler = new Sampler(request.getConfig());
            this.decoder = decoder;
            this.pending = request.getPromptIds();
        }
    }

    /**
     * Creates a batch generator over a contiguous sequence store.
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device
     * @param maxBatch the most sequences decoded together
     */
    public BatchGenerator(LlamaModel model, TextTokenizer tokenizer, NDManager manager, int maxBatch) {
        this(model, tokenizer, manager, maxBatch, (mdl, m) -> mdl.newSequenceStore(m));
    }

    /**
     * Creates a batch generator over a store from a factory (e.g. a paged store).
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device
     * @param maxBatch the most sequences decoded together
     * @param storeFactory makes the store
     */
    public BatchGenerator(LlamaModel model, TextTokenizer tokenizer, NDManager manager, int maxBatch,
            BiFunction<LlamaModel, NDManager, SequenceKvStore> storeFactory) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, got " + maxBatch);
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
        this.maxBatch = maxBatch;
        this.storeFactory = storeFactory;
    }

    /** @return the statistics of the last call */
    public Stats getLastStats() {
        return lastStats;
    }

    /**
     * Generates all requests, interleaved.
     *
     * @param requests the requests, in arrival order
     * @param listener receives every token (sequence id = request index), or null
     * @return one result per request, in request order
     */
    public List<GenerationResult> generate(List<BatchRequest> requests, GenerationListener listener) {
        GenerationResult[] results = new GenerationResult[requests.size()];
        Deque<Integer> waiting = new ArrayDeque<>();
        for (int i = 0; i < requests.size(); i++) {
            waiting.add(i);
        }
        List<Running> running = new ArrayList<>();
        long t0 = System.nanoTime();
        Stats stats = new Stats();
        try (NDManager m = manager.newSubManager(); SequenceKvStore store = storeFactory.apply(model, m)) {
            ParameterStore ps = new ParameterStore(m, false);
            int step = 0;
            while (!waiting.isEmpty() || !running.isEmpty()) {
                while (running.size() < maxBatch && !waiting.isEmpty()
                        && requests.get(waiting.peek()).getArrivalStep() <= step) {
                    int idx = waiting.poll();
                    store.addSequence(idx);
                    running.add(new Running(idx, requests.get(idx), tokenizer.newStreamingDecoder()));
                }
                if (running.isEmpty()) {
                    step++; // idle until the next arrival
                    continue;
                }
                long[] ids = new long[running.size()];
                int[] counts = new int[running.size()];
                int total = 0;
                for (int i = 0; i < running.size(); i++) {
                    ids[i] = running.get(i).id;
                    counts[i] = running.get(i).pending.length;
                    total += counts[i];
                }
                long[] tokens = new long[total];
                int row = 0;
                for (Running r : running) {
                    for (int t : r.pending) {
                        tokens[row++] = t;
                    }
                }
                float[][] logits = forward(ps, m, tokens, ids, counts, store);
                stats.steps++;
                stats.maxRunning = Math.max(stats.maxRunning, running.size());
                stats.peakKvBytes = Math.max(stats.peakKvBytes, store.memoryBytes());
                List<Running> finished = new ArrayList<>();
                for (int i = 0; i < running.size(); i++) {
                    Running r = running.get(i);
                    GenerationConfig cfg = r.request.getConfig();
                    int next = r.sampler.next(logits[i]);
                    r.out.add(next);
                    stats.tokens++;
                    long now = System.nanoTime();
                    if (r.out.size() == 1) {
                        r.firstTokenNanos = now - r.start;
                    }
                    boolean eos = cfg.isStopAtEos() && tokenizer.getEosIds().contains(next);
                    String delta = eos ? "" : r.decoder.next(next);
                    r.text.append(delta);
                    if (listener != null) {
                        listener.onToken(new TokenEvent(r.id, next, delta, r.out.size(), cfg.getMaxNewTokens(),
                                now - r.start, store.memoryBytes()));
                    }
                    if (eos) {
                        r.reason = GenerationResult.FinishReason.EOS;
                    } else if (r.out.size() == cfg.getMaxNewTokens()) {
                        r.reason = GenerationResult.FinishReason.LENGTH;
                    }
                    if (r.reason != null) {
                        finished.add(r);
                    } else {
                        r.pending = new int[] {next};
                    }
                }
                for (Running r : finished) {
                    running.remove(r);
                    store.free(r.id);
                    r.text.append(r.decoder.flush());
                    long total2 = System.nanoTime() - r.start;
                    results[(int) r.id] = new GenerationResult(r.request.getPromptIds(),
                            r.out.stream().mapToInt(Integer::intValue).toArray(), r.text.toString(), r.reason,
                            r.firstTokenNanos, total2 - r.firstTokenNanos, stats.peakKvBytes);
                }
                step++;
            }
        }
        stats.nanos = System.nanoTime() - t0;
        synchronized (lastStats) {
            lastStats.steps = stats.steps;
            lastStats.maxRunning = stats.maxRunning;
            lastStats.tokens = stats.tokens;
            lastStats.nanos = stats.nanos;
            lastStats.peakKvBytes = stats.peakKvBytes;
        }
        return Arrays.asList(results);
    }

    private float[][] forward(ParameterStore ps, NDManager m, long[] tokens, long[] ids, int[] counts,
            SequenceKvStore store) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray t = m.create(tokens); // [N]
            NDArray logits = model.forwardPacked(ps, t, ids, counts, store); // [S, vocab]
            int vocab = (int) logits.getShape().get(1);
            float[] flat = logits.toFloatArray();
            float[][] rows = new float[ids.length][];
            for (int i = 0; i < ids.length; i++) {
                rows[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
            }
            return rows;
        }
    }
}
