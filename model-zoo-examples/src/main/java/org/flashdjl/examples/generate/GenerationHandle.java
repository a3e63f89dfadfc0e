package org.flashdjl.examples.generate;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiConsumer;

/**
 * A request submitted to a {@link RollingBatchScheduler}: wait for its result, or cancel it (its KV pages return
 * to the pool at the next step boundary). Thread-safe.
 */
public final class GenerationHandle {

    private final long id;
    private final int[] promptIds;
    private final GenerationConfig config;
    private final GenerationListener listener;
    private final long submitNanos;
    private final long deadlineNanos; // 0 = none
    private final int pagesNeeded;
    private final CompletableFuture<GenerationResult> future = new CompletableFuture<>();
    private final CompletableFuture<Void> started = new CompletableFuture<>();
    private volatile boolean cancelRequested;

    GenerationHandle(long id, int[] promptIds, GenerationConfig config, GenerationListener listener,
            long submitNanos, long timeoutMillis, int pagesNeeded) {
        this.id = id;
        this.promptIds = promptIds;
        this.config = config;
        this.listener = listener;
        this.submitNanos = submitNanos;
        this.deadlineNanos = timeoutMillis <= 0 ? 0 : submitNanos + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        this.pagesNeeded = pagesNeeded;
    }

    /** @return the request's id (the sequence id in the scheduler's KV store, and in its token events) */
    public long getId() {
        return id;
    }

    /** @return the number of prompt tokens */
    public int getPromptTokens() {
        return promptIds.length;
    }

    /** @return the generation config */
    public GenerationConfig getConfig() {
        return config;
    }

    /**
     * Asks the scheduler to stop this request: a waiting request never runs, a running one leaves the batch at
     * the next step boundary with {@link GenerationResult.FinishReason#CANCELLED} and the tokens so far, its KV
     * pages freed. No effect on a finished request.
     *
     * @return true if the request had not finished yet
     */
    public boolean cancel() {
        cancelRequested = true;
        return !future.isDone();
    }

    /** @return whether the request finished (result, rejection or failure) */
    public boolean isDone() {
        return future.isDone();
    }

    /**
     * Waits for the result.
     *
     * @return the result (finish reason EOS, LENGTH, CANCELLED or TIMEOUT)
     * @throws InterruptedException if the waiting thread is interrupted (the request goes on: cancel it)
     * @throws GenerationRejectedException if the request was not admitted
     * @throws IllegalStateException if generation failed (the cause says why)
     */
    public GenerationResult await() throws InterruptedException {
        try {
            return future.get();
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    /**
     * Waits at most a given time for the result.
     *
     * @param timeout the most time to wait
     * @param unit its unit
     * @return the result
     * @throws InterruptedException if the waiting thread is interrupted
     * @throws TimeoutException if the result is not there in time (the request goes on: cancel it)
     * @throws GenerationRejectedException if the request was not admitted
     * @throws IllegalStateException if generation failed
     */
    public GenerationResult await(long timeout, TimeUnit unit) throws InterruptedException, TimeoutException {
        try {
            return future.get(timeout, unit);
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    /**
     * Waits until the request has joined the batch (or ended without running: cancelled or timed out while
     * waiting).
     *
     * @throws InterruptedException if the waiting thread is interrupted
     * @throws GenerationRejectedException if the request was not admitted
     * @throws IllegalStateException if it failed before it ran
     */
    public void awaitAdmission() throws InterruptedException {
        try {
            CompletableFuture.anyOf(started, future).get();
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    /**
     * Runs an action when the request ends (on the scheduler thread, or at once if it has ended): with the result,
     * or with the failure ({@link GenerationRejectedException} when it was not admitted).
     *
     * @param action receives (result, null) or (null, failure)
     */
    public void whenDone(BiConsumer<GenerationResult, Throwable> action) {
        future.whenComplete(action);
    }

    private static RuntimeException unwrap(ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof GenerationRejectedException) {
            return new GenerationRejectedException(c.getMessage());
        }
        if (c instanceof CancellationException) {
            return (CancellationException) c;
        }
        return new IllegalStateException("generation failed: " + c, c);
    }

    int[] promptIds() {
        return promptIds;
    }

    GenerationListener listener() {
        return listener;
    }

    long submitNanos() {
        return submitNanos;
    }

    int pagesNeeded() {
        return pagesNeeded;
    }

    boolean isCancelRequested() {
        return cancelRequested;
    }

    boolean isPastDeadline(long now) {
        return deadlineNanos != 0 && now - deadlineNanos >= 0;
    }

    void started() {
        started.complete(null);
    }

    void complete(GenerationResult result) {
        future.complete(result);
    }

    void fail(Throwable t) {
        future.completeExceptionally(t);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "GenerationHandle{id=" + id + ", prompt=" + promptIds.length + " tokens, " + config + "}";
    }
}
