package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDManager;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.util.ArrayDeque;
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
 * A step spends at most {@code maxBatchedTokens} tokens (one per decoding sequence first, then prompt chunks in
 * admission order), so a step's activations stay bounded however many long prompts arrive at once: prompts beyond
 * the budget are prefilled in chunks over several steps. Results equal single-stream {@link Generator} results
 * token for token. The step loop is the one {@link RollingBatchScheduler} runs for concurrent requests; here
 * prompts arrive at given steps.
 */
public final class BatchGenerator {

    /**
     * The default token budget of one step (cf. vLLM's {@code max_num_batched_tokens}): large enough for full-size
     * matrix products; a step then holds one layer's activations for at most 16384 tokens (the packed pass frees
     * each layer's as it ends), about 1.4 GiB for a 1B model in fp16 (hidden 2048, MLP 8192: ~86 KiB a token).
     */
    public static final int DEFAULT_MAX_BATCHED_TOKENS = 16384;

    /** The largest token budget of one step. */
    public static final int MAX_BATCHED_TOKENS_LIMIT = 1 << 20;

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final NDManager manager;
    private final int maxBatch;
    private final int maxBatchedTokens;
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
     * Creates a batch generator over a store from a factory (e.g. a paged store), with a step budget of {@link
     * #DEFAULT_MAX_BATCHED_TOKENS} tokens (or {@code maxBatch}, if larger).
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device
     * @param maxBatch the most sequences decoded together
     * @param storeFactory makes the store
     */
    public BatchGenerator(LlamaModel model, TextTokenizer tokenizer, NDManager manager, int maxBatch,
            BiFunction<LlamaModel, NDManager, SequenceKvStore> storeFactory) {
        this(model, tokenizer, manager, maxBatch, storeFactory, Math.max(DEFAULT_MAX_BATCHED_TOKENS, maxBatch));
    }

    /**
     * Creates a batch generator over a store from a factory, with a token budget per step.
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device
     * @param maxBatch the most sequences decoded together
     * @param storeFactory makes the store
     * @param maxBatchedTokens the most tokens of one step, in [maxBatch, {@link #MAX_BATCHED_TOKENS_LIMIT}]: every
     *     running sequence needs one token a step
     * @throws IllegalArgumentException when maxBatch or maxBatchedTokens is out of range
     */
    public BatchGenerator(LlamaModel model, TextTokenizer tokenizer, NDManager manager, int maxBatch,
            BiFunction<LlamaModel, NDManager, SequenceKvStore> storeFactory, int maxBatchedTokens) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, got " + maxBatch);
        }
        if (maxBatchedTokens < maxBatch || maxBatchedTokens > MAX_BATCHED_TOKENS_LIMIT) {
            throw new IllegalArgumentException("maxBatchedTokens must be in [maxBatch = " + maxBatch + ", "
                    + MAX_BATCHED_TOKENS_LIMIT + "] (each running sequence takes one token a step), got "
                    + maxBatchedTokens);
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
        this.maxBatch = maxBatch;
        this.maxBatchedTokens = maxBatchedTokens;
        this.storeFactory = storeFactory;
    }

    /** @return the most tokens of one step */
    public int getMaxBatchedTokens() {
        return maxBatchedTokens;
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
        long t0 = System.nanoTime();
        Stats stats = new Stats();
        try (NDManager m = manager.newSubManager();
                PackedBatch batch = new PackedBatch(model, tokenizer, m, storeFactory.apply(model, m),
                        maxBatchedTokens)) {
            int step = 0;
            while (!waiting.isEmpty() || batch.size() > 0) {
                while (batch.size() < maxBatch && !waiting.isEmpty()
                        && requests.get(waiting.peek()).getArrivalStep() <= step) {
                    int idx = waiting.poll();
                    BatchRequest r = requests.get(idx);
                    batch.add(new PackedBatch.Slot(idx, r.getPromptIds(), r.getConfig(), listener,
                            tokenizer.newStreamingDecoder(), System.nanoTime()));
                }
                if (batch.size() == 0) {
                    step++; // idle until the next arrival
                    continue;
                }
                stats.maxRunning = Math.max(stats.maxRunning, batch.size());
                List<PackedBatch.Slot> finished = batch.step();
                stats.steps++;
                stats.peakKvBytes = batch.peakKvBytes();
                for (PackedBatch.Slot s : finished) {
                    if (s.failure != null) {
                        throw s.failure;
                    }
                    stats.tokens += s.generated;
                    results[(int) s.id] = s.result(stats.peakKvBytes);
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
}
