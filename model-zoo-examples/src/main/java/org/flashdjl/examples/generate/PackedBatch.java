package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.StreamingDecoder;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The one batching loop of continuous batching, shared by {@link BatchGenerator} (a list of prompts) and {@link
 * RollingBatchScheduler} (requests from many threads): the running sequences over one {@link SequenceKvStore}, and
 * {@link #step} = one packed forward pass ({@link LlamaModel#forwardPacked}) plus one sampled token per sequence
 * whose prompt is complete.
 *
 * <p>Each step spends at most {@code tokenBudget} tokens: first one token per decoding sequence (its last sampled
 * token), then prompt chunks of the sequences still prefilling, in admission order (chunked prefill: a long prompt
 * is spread over several steps while the others keep decoding). A sequence whose prompt is not complete after its
 * chunk samples nothing that step. Not thread-safe: one thread drives it.
 */
final class PackedBatch implements AutoCloseable {

    /** One running sequence. */
    static final class Slot {
        final long id;
        final int[] prompt;
        final GenerationConfig config;
        final GenerationListener listener;
        final Sampler sampler;
        final StreamingDecoder decoder;
        final StringBuilder text = new StringBuilder();
        final long startNanos;
        int[] out;
        int generated;
        int prefilled;
        long firstTokenNanos;
        GenerationResult.FinishReason reason;
        RuntimeException failure;

        /**
         * Creates a slot.
         *
         * @param id the sequence id in the store
         * @param prompt the prompt ids (validated by the caller)
         * @param config what to generate
         * @param listener receives its tokens, or null
         * @param decoder its streaming decoder
         * @param startNanos when its clock starts (submission or admission)
         */
        Slot(long id, int[] prompt, GenerationConfig config, GenerationListener listener, StreamingDecoder decoder,
                long startNanos) {
            this.id = id;
            this.prompt = prompt;
            this.config = config;
            this.listener = listener;
            this.sampler = new Sampler(config);
            this.decoder = decoder;
            this.startNanos = startNanos;
            this.out = new int[Math.min(config.getMaxNewTokens(), 64)];
        }

        /** @return the tokens this slot feeds next step if unlimited */
        int pendingTokens() {
            return prefilled < prompt.length ? prompt.length - prefilled : 1;
        }

        /** @return whether the prompt has been fed completely */
        boolean isDecoding() {
            return prefilled == prompt.length;
        }

        /** @return the generated tokens so far */
        int[] tokens() {
            return Arrays.copyOf(out, generated);
        }

        /**
         * Returns the result of a finished slot, its text flushed.
         *
         * @param kvBytes the KV bytes to report
         * @return the result
         */
        GenerationResult result(long kvBytes) {
            text.append(decoder.flush());
            long total = System.nanoTime() - startNanos;
            long ttft = generated == 0 ? total : firstTokenNanos;
            return new GenerationResult(prompt, tokens(), text.toString(), reason, ttft, total - ttft, kvBytes);
        }

        private void add(int token) {
            if (generated == out.length) {
                out = Arrays.copyOf(out, Math.min(config.getMaxNewTokens(), out.length * 2));
            }
            out[generated++] = token;
        }
    }

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final NDManager manager;
    private final SequenceKvStore store;
    private final ParameterStore ps;
    private final int tokenBudget;
    private final List<Slot> running = new ArrayList<>();
    private long peakKvBytes;

    /**
     * Creates an empty batch.
     *
     * @param model the model
     * @param tokenizer its tokenizer (EOS ids, streaming decode)
     * @param manager the manager of the per-step arrays (a sub-manager of the model's device; closed by the owner)
     * @param store the KV store (closed by {@link #close})
     * @param tokenBudget the most tokens of one forward pass, at least the most sequences the caller admits
     */
    PackedBatch(LlamaModel model, TextTokenizer tokenizer, NDManager manager, SequenceKvStore store,
            int tokenBudget) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
        this.store = store;
        this.ps = new ParameterStore(manager, false);
        this.tokenBudget = tokenBudget;
    }

    /** @return the running sequences, in admission order */
    List<Slot> running() {
        return running;
    }

    /** @return the number of running sequences */
    int size() {
        return running.size();
    }

    /** @return the KV store */
    SequenceKvStore store() {
        return store;
    }

    /** @return the peak KV bytes seen after a step */
    long peakKvBytes() {
        return peakKvBytes;
    }

    /**
     * Admits a sequence: adds it to the store; it joins the next step.
     *
     * @param slot the sequence
     */
    void add(Slot slot) {
        store.addSequence(slot.id);
        running.add(slot);
    }

    /**
     * Removes a running sequence before it finishes (cancelled, timed out), freeing its storage.
     *
     * @param slot the sequence
     */
    void remove(Slot slot) {
        if (running.remove(slot)) {
            store.free(slot.id);
        }
    }

    /**
     * Runs one step. Sequences that finish (EOS, their max new tokens, or a listener that threw: {@link
     * Slot#failure}) leave the batch, their storage freed, and are returned. If the forward pass itself throws,
     * the batch is unchanged apart from the store's reservation (the caller decides what to do with it).
     *
     * @return the sequences that finished in this step
     */
    List<Slot> step() {
        int n = running.size();
        int[] counts = new int[n];
        int budget = tokenBudget;
        for (int i = 0; i < n; i++) {
            if (running.get(i).isDecoding()) {
                counts[i] = 1;
                budget--;
            }
        }
        for (int i = 0; i < n && budget > 0; i++) {
            Slot s = running.get(i);
            if (!s.isDecoding()) {
                counts[i] = Math.min(s.pendingTokens(), budget);
                budget -= counts[i];
            }
        }
        int active = 0;
        int total = 0;
        for (int c : counts) {
            active += c > 0 ? 1 : 0;
            total += c;
        }
        List<Slot> finished = new ArrayList<>();
        if (active == 0) {
            return finished;
        }
        long[] ids = new long[active];
        int[] stepCounts = new int[active];
        Slot[] stepSlots = new Slot[active];
        long[] tokens = new long[total]; // [N] packed
        int row = 0;
        int j = 0;
        for (int i = 0; i < n; i++) {
            if (counts[i] == 0) {
                continue;
            }
            Slot s = running.get(i);
            ids[j] = s.id;
            stepCounts[j] = counts[i];
            stepSlots[j++] = s;
            if (s.isDecoding()) {
                tokens[row++] = s.out[s.generated - 1];
            } else {
                for (int t = 0; t < counts[i]; t++) {
                    tokens[row++] = s.prompt[s.prefilled + t];
                }
            }
        }
        Sampler[] samplers = new Sampler[active]; // null: a prompt chunk with more to come samples nothing
        for (int i = 0; i < active; i++) {
            Slot s = stepSlots[i];
            boolean samples = s.isDecoding() || s.prefilled + stepCounts[i] >= s.prompt.length;
            samplers[i] = samples ? s.sampler : null;
        }
        int[] next = forward(tokens, ids, stepCounts, samplers);
        long kv = store.memoryBytes();
        peakKvBytes = Math.max(peakKvBytes, kv);
        for (int i = 0; i < active; i++) {
            Slot s = stepSlots[i];
            if (!s.isDecoding()) {
                s.prefilled += stepCounts[i];
                if (!s.isDecoding()) {
                    continue; // more prompt chunks to come
                }
            }
            if (sample(s, next[i], kv)) {
                finished.add(s);
            }
        }
        for (Slot s : finished) {
            remove(s);
        }
        return finished;
    }

    // Records a sequence's sampled token; returns whether it finished.
    private boolean sample(Slot s, int next, long kv) {
        s.add(next);
        long now = System.nanoTime();
        if (s.generated == 1) {
            s.firstTokenNanos = now - s.startNanos;
        }
        GenerationConfig cfg = s.config;
        boolean eos = cfg.isStopAtEos() && tokenizer.getEosIds().contains(next);
        String delta = eos ? "" : s.decoder.next(next);
        s.text.append(delta);
        if (eos) {
            s.reason = GenerationResult.FinishReason.EOS;
        } else if (s.generated == cfg.getMaxNewTokens()) {
            s.reason = GenerationResult.FinishReason.LENGTH;
        }
        if (s.listener != null) {
            try {
                s.listener.onToken(new TokenEvent(s.id, next, delta, s.generated, cfg.getMaxNewTokens(),
                        now - s.startNanos, kv));
            } catch (RuntimeException e) {
                s.failure = e; // this sequence's consumer failed: it leaves, the others go on
                return true;
            }
        }
        return s.reason != null;
    }

    // One packed forward pass; the next token of each sequence that samples (samplers[i] != null), else -1.
    // Greedy tokens are picked on the model's device (one [S] index copy for the whole step); only the rows of
    // sampling sequences come to the host.
    private int[] forward(long[] tokens, long[] ids, int[] counts, Sampler[] samplers) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray t = manager.create(tokens); // [N]
            NDArray logits = model.forwardPacked(ps, t, ids, counts, store); // [S, vocab]
            int[] next = new int[ids.length];
            long[] greedy = null;
            for (int i = 0; i < ids.length; i++) {
                if (samplers[i] == null) {
                    next[i] = -1;
                } else if (samplers[i].isGreedy()) {
                    if (greedy == null) {
                        greedy = logits.argMax(1).toLongArray(); // [S], the first of equal maxima
                    }
                    next[i] = (int) greedy[i];
                } else {
                    next[i] = samplers[i].next(logits.get(i).toFloatArray()); // [vocab]
                }
            }
            return next;
        }
    }

    /** Frees every running sequence and closes the store. */
    @Override
    public void close() {
        running.clear();
        store.close();
    }
}
