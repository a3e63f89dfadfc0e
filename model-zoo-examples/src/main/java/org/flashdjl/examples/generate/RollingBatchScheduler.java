package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDManager;

import org.flashdjl.engine.cache.PagedSequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Rolling (continuous) batching for concurrent callers: requests submitted from any thread join one decode loop
 * over a paged KV cache ({@link LlamaModel#newPagedStore}), run by the scheduler's own thread. Each step is one
 * packed forward pass ({@link LlamaModel#forwardPacked}) of every running sequence: decoding sequences feed their
 * last token, newly admitted ones their prompt in chunks within the step's token budget ({@code
 * maxNumBatchedTokens}), so a long prompt does not stall the others. Finished sequences leave at once and their
 * pages return to the pool.
 *
 * <p>Admission, first come first served: a request joins when fewer than {@code maxRollingBatchSize} sequences run
 * and the pool can hold its worst case ({@code prompt + maxNewTokens} tokens) on top of the worst cases of the
 * running ones, so a running sequence never runs out of pages. A request that cannot join within the admission
 * timeout is rejected ({@link GenerationRejectedException}, with the reason). {@link GenerationHandle#cancel} or a
 * per-request time limit ends a request at the next step boundary and frees its pages; an exception from one
 * request's listener ends that request only.
 *
 * <p>Greedy results equal {@link Generator}'s single-stream results (the packed step computes the same math per
 * sequence); sampled ones too, each request drawing from its own seeded {@link Sampler}.
 *
 * <pre>{@code
 * try (RollingBatchScheduler s = RollingBatchScheduler.builder().setModel(model).setTokenizer(tokenizer)
 *         .setManager(manager).optMaxRollingBatchSize(32).optKvCache(1024, 16).build()) {
 *     GenerationHandle h = s.submit(promptIds, GenerationConfig.builder().optMaxNewTokens(64).build(),
 *             e -> System.out.print(e.getText()));
 *     GenerationResult r = h.await();
 * }
 * }</pre>
 */
public final class RollingBatchScheduler implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(RollingBatchScheduler.class);

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final int maxRollingBatchSize;
    private final int maxNumBatchedTokens;
    private final int numPages;
    private final int pageSize;
    private final long admissionTimeoutMillis;
    private final PagedSequenceKvStore store;
    private final NDManager stepManager;
    private final PackedBatch batch;
    private final Thread thread;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition wake = lock.newCondition();
    private final Deque<GenerationHandle> incoming = new ArrayDeque<>(); // guarded by lock
    private boolean closed; // guarded by lock

    // owned by the scheduler thread
    private final Deque<GenerationHandle> waiting = new ArrayDeque<>();
    private final Map<Long, GenerationHandle> handles = new HashMap<>();
    private int committedPages;

    private final AtomicLong nextId = new AtomicLong();
    private final Stats stats = new Stats();

    private RollingBatchScheduler(Builder b) {
        this.model = b.model;
        this.tokenizer = b.tokenizer;
        this.maxRollingBatchSize = b.maxRollingBatchSize;
        this.maxNumBatchedTokens = b.maxNumBatchedTokens;
        this.numPages = b.numPages;
        this.pageSize = b.pageSize;
        this.admissionTimeoutMillis = b.admissionTimeoutMillis;
        this.store = (PagedSequenceKvStore) model.newPagedStore(numPages, pageSize);
        stats.freePages.set(numPages);
        this.stepManager = b.manager.newSubManager();
        this.stepManager.setName("rolling-batch");
        this.batch = new PackedBatch(model, tokenizer, stepManager, store, maxNumBatchedTokens);
        this.thread = new Thread(this::loop, b.threadName);
        thread.setDaemon(true);
        thread.setContextClassLoader(RollingBatchScheduler.class.getClassLoader());
        thread.start();
    }

    /**
     * Returns a builder: 32 sequences, 512 tokens per step, 1024 pages of 16 tokens, 30 s admission timeout.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the most sequences decoded together */
    public int getMaxRollingBatchSize() {
        return maxRollingBatchSize;
    }

    /** @return the most tokens of one forward pass (decode tokens plus prompt chunks) */
    public int getMaxNumBatchedTokens() {
        return maxNumBatchedTokens;
    }

    /** @return the KV pool's pages */
    public int getNumPages() {
        return numPages;
    }

    /** @return tokens per page */
    public int getPageSize() {
        return pageSize;
    }

    /** @return how long a request waits for admission before it is rejected, in milliseconds */
    public long getAdmissionTimeoutMillis() {
        return admissionTimeoutMillis;
    }

    /** @return live counters (updated by the scheduler thread) */
    public Stats getStats() {
        return stats;
    }

    /**
     * Returns the pages a request's worst case occupies.
     *
     * @param promptTokens prompt length
     * @param maxNewTokens its max new tokens
     * @return {@code ceil((promptTokens + maxNewTokens) / pageSize)}
     */
    public int pagesFor(int promptTokens, int maxNewTokens) {
        return (int) (((long) promptTokens + maxNewTokens + pageSize - 1) / pageSize);
    }

    /**
     * Submits a request without a time limit.
     *
     * @param promptIds the prompt (at least one id, each in the vocabulary)
     * @param config what to generate
     * @param listener receives each token on the scheduler thread (keep it short), or null
     * @return the handle
     * @throws IllegalArgumentException if the request can never run here (state unchanged)
     * @throws GenerationRejectedException if the scheduler is closed
     */
    public GenerationHandle submit(int[] promptIds, GenerationConfig config, GenerationListener listener) {
        return submit(promptIds, config, listener, 0);
    }

    /**
     * Submits a request.
     *
     * @param promptIds the prompt (at least one id, each in the vocabulary)
     * @param config what to generate
     * @param listener receives each token on the scheduler thread (keep it short), or null
     * @param timeoutMillis the request's time limit from now (waiting included), after which it ends with {@link
     *     GenerationResult.FinishReason#TIMEOUT}; 0 = none
     * @return the handle
     * @throws IllegalArgumentException if the request can never run here (state unchanged)
     * @throws GenerationRejectedException if the scheduler is closed
     */
    public GenerationHandle submit(int[] promptIds, GenerationConfig config, GenerationListener listener,
            long timeoutMillis) {
        if (promptIds == null || promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt is empty: nothing to condition on (add BOS or text)");
        }
        if (config == null) {
            throw new IllegalArgumentException("config is null");
        }
        if (timeoutMillis < 0) {
            throw new IllegalArgumentException("timeoutMillis must be >= 0 (0 = none), got " + timeoutMillis);
        }
        int vocab = model.getConfig().getVocabSize();
        for (int id : promptIds) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("prompt token id " + id + " is outside the vocabulary [0, "
                        + vocab + ")");
            }
        }
        int pages = pagesFor(promptIds.length, config.getMaxNewTokens());
        if (pages > numPages) {
            throw new IllegalArgumentException("the request needs " + pages + " KV pages (prompt " + promptIds.length
                    + " + max_new_tokens " + config.getMaxNewTokens() + " tokens, " + pageSize
                    + " tokens per page); the pool has " + numPages);
        }
        GenerationHandle h = new GenerationHandle(nextId.getAndIncrement(), promptIds.clone(), config, listener,
                System.nanoTime(), timeoutMillis, pages);
        lock.lock();
        try {
            if (closed) {
                throw new GenerationRejectedException("the scheduler is closed");
            }
            incoming.add(h);
            stats.waiting.incrementAndGet();
            wake.signal();
        } finally {
            lock.unlock();
        }
        return h;
    }

    private void loop() {
        try {
            while (true) {
                lock.lock();
                try {
                    while (!closed && incoming.isEmpty() && waiting.isEmpty() && batch.size() == 0) {
                        wake.await();
                    }
                    if (closed) {
                        break;
                    }
                    waiting.addAll(incoming);
                    incoming.clear();
                } finally {
                    lock.unlock();
                }
                long now = System.nanoTime();
                reapRunning(now);
                admit(now);
                if (batch.size() == 0) {
                    continue;
                }
                List<PackedBatch.Slot> finished;
                try {
                    finished = batch.step();
                } catch (RuntimeException | Error e) {
                    logger.error("rolling batch step failed; failing its {} sequences", batch.size(), e);
                    for (PackedBatch.Slot s : new ArrayList<>(batch.running())) {
                        end(s, null, e);
                    }
                    continue;
                }
                stats.steps.incrementAndGet();
                stats.freePages.set(store.getCache().getFreePageCount());
                for (PackedBatch.Slot s : finished) {
                    stats.tokens.addAndGet(s.generated);
                    end(s, s.failure == null ? s.reason : null, s.failure);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            shutdown();
        }
    }

    // Ends running sequences that were cancelled or ran out of time.
    private void reapRunning(long now) {
        for (PackedBatch.Slot s : new ArrayList<>(batch.running())) {
            GenerationHandle h = handles.get(s.id);
            if (h.isCancelRequested()) {
                end(s, GenerationResult.FinishReason.CANCELLED, null);
            } else if (h.isPastDeadline(now)) {
                end(s, GenerationResult.FinishReason.TIMEOUT, null);
            }
        }
    }

    // First come, first served: admits while sequences and pages allow; expires the waiting ones.
    private void admit(long now) {
        boolean blocked = false;
        for (Iterator<GenerationHandle> it = waiting.iterator(); it.hasNext();) {
            GenerationHandle h = it.next();
            if (h.isCancelRequested()) {
                it.remove();
                stats.waiting.decrementAndGet();
                h.complete(new GenerationResult(h.promptIds(), new int[0], "",
                        GenerationResult.FinishReason.CANCELLED, 0, 0, 0));
                continue;
            }
            if (h.isPastDeadline(now)) {
                it.remove();
                stats.waiting.decrementAndGet();
                h.complete(new GenerationResult(h.promptIds(), new int[0], "", GenerationResult.FinishReason.TIMEOUT,
                        0, 0, 0));
                continue;
            }
            boolean fits = batch.size() < maxRollingBatchSize && committedPages + h.pagesNeeded() <= numPages;
            if (!blocked && fits) {
                it.remove();
                stats.waiting.decrementAndGet();
                PackedBatch.Slot s = new PackedBatch.Slot(h.getId(), h.promptIds(), h.getConfig(), h.listener(),
                        tokenizer.newStreamingDecoder(), h.submitNanos());
                try {
                    batch.add(s);
                } catch (RuntimeException e) {
                    h.fail(e);
                    continue;
                }
                handles.put(h.getId(), h);
                h.started();
                committedPages += h.pagesNeeded();
                stats.running.set(batch.size());
                stats.maxRunning.accumulateAndGet(batch.size(), Math::max);
                stats.committedPages.set(committedPages);
                continue;
            }
            blocked = true; // keep arrival order: nobody overtakes the head of the queue
            long waited = TimeUnit.NANOSECONDS.toMillis(now - h.submitNanos());
            if (waited >= admissionTimeoutMillis) {
                it.remove();
                stats.waiting.decrementAndGet();
                stats.rejected.incrementAndGet();
                h.fail(new GenerationRejectedException(String.format(Locale.ROOT,
                        "server busy: the request waited %d ms (admission timeout %d ms) for room in the rolling"
                                + " batch: %d of %d sequences running (max_rolling_batch_size), %d of %d KV pages"
                                + " committed, this request needs %d (%d prompt + %d max new tokens, %d per page)",
                        waited, admissionTimeoutMillis, batch.size(), maxRollingBatchSize, committedPages, numPages,
                        h.pagesNeeded(), h.getPromptTokens(), h.getConfig().getMaxNewTokens(), pageSize)));
            }
        }
    }

    // Removes a sequence from the batch (freeing its pages) and completes its handle.
    private void end(PackedBatch.Slot s, GenerationResult.FinishReason reason, Throwable failure) {
        GenerationHandle h = handles.remove(s.id);
        try {
            batch.remove(s); // no-op when step() already removed it
        } catch (RuntimeException e) {
            logger.warn("freeing sequence {} failed", s.id, e);
        }
        committedPages -= h.pagesNeeded();
        stats.committedPages.set(committedPages);
        stats.freePages.set(store.getCache().getFreePageCount());
        stats.running.set(batch.size());
        if (failure != null) {
            h.fail(failure);
        } else {
            s.reason = reason;
            h.complete(s.result(batch.peakKvBytes()));
        }
    }

    private void shutdown() {
        List<GenerationHandle> pending = new ArrayList<>();
        lock.lock();
        try {
            closed = true;
            pending.addAll(incoming);
            incoming.clear();
        } finally {
            lock.unlock();
        }
        pending.addAll(waiting);
        waiting.clear();
        for (GenerationHandle h : pending) {
            h.fail(new GenerationRejectedException("the scheduler is closed"));
        }
        for (PackedBatch.Slot s : new ArrayList<>(batch.running())) {
            end(s, GenerationResult.FinishReason.CANCELLED, null);
        }
        stats.waiting.set(0);
        batch.close();
        stepManager.close();
    }

    /**
     * Stops the loop: waiting requests are rejected, running ones end as {@link
     * GenerationResult.FinishReason#CANCELLED}; the KV pool is freed. Waits for the scheduler thread.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            wake.signal();
        } finally {
            lock.unlock();
        }
        if (Thread.currentThread() != thread) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Live counters of a scheduler. */
    public static final class Stats {
        private final AtomicLong steps = new AtomicLong();
        private final AtomicLong tokens = new AtomicLong();
        private final AtomicLong rejected = new AtomicLong();
        private final AtomicInteger running = new AtomicInteger();
        private final AtomicInteger waiting = new AtomicInteger();
        private final AtomicInteger maxRunning = new AtomicInteger();
        private final AtomicInteger committedPages = new AtomicInteger();
        private final AtomicInteger freePages = new AtomicInteger();

        Stats() {}

        /** @return forward passes run */
        public long getSteps() {
            return steps.get();
        }

        /** @return tokens generated by finished requests */
        public long getTokens() {
            return tokens.get();
        }

        /** @return requests rejected for want of room */
        public long getRejected() {
            return rejected.get();
        }

        /** @return sequences in the batch now */
        public int getRunning() {
            return running.get();
        }

        /** @return requests waiting for admission now */
        public int getWaiting() {
            return waiting.get();
        }

        /** @return the most sequences decoded together so far */
        public int getMaxRunning() {
            return maxRunning.get();
        }

        /** @return KV pages promised to the running sequences' worst cases */
        public int getCommittedPages() {
            return committedPages.get();
        }

        /** @return KV pages free in the pool now */
        public int getFreePages() {
            return freePages.get();
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "steps=" + getSteps() + ", tokens=" + getTokens() + ", running=" + getRunning() + ", waiting="
                    + getWaiting() + ", maxRunning=" + getMaxRunning() + ", committedPages=" + getCommittedPages()
                    + ", freePages=" + getFreePages() + ", rejected=" + getRejected();
        }
    }

    /** Builds a {@link RollingBatchScheduler}. */
    public static final class Builder {
        private LlamaModel model;
        private TextTokenizer tokenizer;
        private NDManager manager;
        private int maxRollingBatchSize = 32;
        private int maxNumBatchedTokens = 512;
        private int numPages = 1024;
        private int pageSize = 16;
        private long admissionTimeoutMillis = 30_000;
        private String threadName = "flashdjl-rolling-batch";

        private Builder() {}

        /**
         * Sets the model (required).
         *
         * @param model the model, weights loaded
         * @return this builder
         */
        public Builder setModel(LlamaModel model) {
            this.model = model;
            return this;
        }

        /**
         * Sets the tokenizer (required): EOS ids and streamed text.
         *
         * @param tokenizer the model's tokenizer
         * @return this builder
         */
        public Builder setTokenizer(TextTokenizer tokenizer) {
            this.tokenizer = tokenizer;
            return this;
        }

        /**
         * Sets the parent manager of the per-step arrays (required), on the model's device.
         *
         * @param manager the manager
         * @return this builder
         */
        public Builder setManager(NDManager manager) {
            this.manager = manager;
            return this;
        }

        /**
         * Sets the most sequences decoded together (default 32).
         *
         * @param n in [1, 65536]
         * @return this builder
         */
        public Builder optMaxRollingBatchSize(int n) {
            if (n < 1 || n > 65536) {
                throw new IllegalArgumentException("max_rolling_batch_size must be in [1, 65536], got " + n);
            }
            this.maxRollingBatchSize = n;
            return this;
        }

        /**
         * Sets the most tokens of one forward pass (default 512): one per decoding sequence plus prompt chunks.
         *
         * @param n in [1, 1048576], at least the max rolling batch size (checked by {@link #build})
         * @return this builder
         */
        public Builder optMaxNumBatchedTokens(int n) {
            if (n < 1 || n > 1 << 20) {
                throw new IllegalArgumentException("max_num_batched_tokens must be in [1, 1048576], got " + n);
            }
            this.maxNumBatchedTokens = n;
            return this;
        }

        /**
         * Sets the KV pool (default 1024 pages of 16 tokens), allocated once when the scheduler is built.
         *
         * @param numPages pages, {@code >= 1}
         * @param pageSize tokens per page, in [1, 4096]
         * @return this builder
         */
        public Builder optKvCache(int numPages, int pageSize) {
            if (numPages < 1) {
                throw new IllegalArgumentException("the KV pool needs at least 1 page, got " + numPages);
            }
            if (pageSize < 1 || pageSize > 4096) {
                throw new IllegalArgumentException("page size must be in [1, 4096] tokens, got " + pageSize);
            }
            if ((long) numPages * pageSize > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("the KV pool of " + numPages + " pages x " + pageSize
                        + " tokens exceeds " + Integer.MAX_VALUE + " token slots");
            }
            this.numPages = numPages;
            this.pageSize = pageSize;
            return this;
        }

        /**
         * Sets how long a request waits for room in the batch before it is rejected (default 30000 ms).
         *
         * @param millis {@code >= 0}
         * @return this builder
         */
        public Builder optAdmissionTimeoutMillis(long millis) {
            if (millis < 0) {
                throw new IllegalArgumentException("admission timeout must be >= 0 ms, got " + millis);
            }
            this.admissionTimeoutMillis = millis;
            return this;
        }

        /**
         * Sets the scheduler thread's name (default {@code flashdjl-rolling-batch}).
         *
         * @param name the name
         * @return this builder
         */
        public Builder optThreadName(String name) {
            this.threadName = name;
            return this;
        }

        /**
         * Allocates the KV pool and starts the scheduler thread.
         *
         * @return the scheduler; close it to stop the thread and free the pool
         */
        public RollingBatchScheduler build() {
            if (model == null || tokenizer == null || manager == null) {
                throw new IllegalArgumentException("setModel, setTokenizer and setManager are required");
            }
            if (maxNumBatchedTokens < maxRollingBatchSize) {
                throw new IllegalArgumentException("max_num_batched_tokens (" + maxNumBatchedTokens
                        + ") must be >= max_rolling_batch_size (" + maxRollingBatchSize
                        + "): every running sequence feeds one token per step");
            }
            return new RollingBatchScheduler(this);
        }
    }
}
