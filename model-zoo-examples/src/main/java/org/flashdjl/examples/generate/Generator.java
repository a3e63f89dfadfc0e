package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.StreamingDecoder;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.BiFunction;

/**
 * Streaming generation of one prompt: one prefill pass over the prompt, then one decode step per token.
 *
 * <p>Where the keys and values live: by default a paged store ({@link LlamaModel#newPagedStore}) sized once for
 * the prompt and the new tokens, run through the model's packed step ({@link LlamaModel#forwardPacked}: on CUDA the
 * fused kernels and paged attention straight from the pages); a model whose options ask for fixed-size streaming
 * caches (sliding window + sinks, {@link AttentionOptions#isStreamingCache()}) uses those instead, as does a
 * generator made with a cache factory (any {@link KvCache}, through {@link LlamaModel#forward}). Greedy tokens are
 * picked on the model's device ({@link Sampler#next(NDArray)}: one small copy per step). Every step runs in its own
 * {@link NDScope}, so memory stays flat apart from the caches. Thread-safe: concurrent calls use separate caches
 * and sub-managers.
 *
 * <pre>{@code
 * Generator gen = new Generator(model, tokenizer, manager);
 * GenerationResult r = gen.generate("Once upon a time", GenerationConfig.builder().optMaxNewTokens(32).build(),
 *         e -> System.out.print(e.getText()));
 * }</pre>
 */
public final class Generator {

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final NDManager manager;
    private final BiFunction<NDManager, Long, KvCache[]> cacheFactory; // null: the model's default

    /** Tokens per page of the default paged store. */
    static final int PAGE_SIZE = 16;

    /**
     * Creates a generator with the model's default storage (see the class doc).
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device (parent of each call's sub-manager)
     */
    public Generator(LlamaModel model, TextTokenizer tokenizer, NDManager manager) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
        this.cacheFactory = null;
    }

    /**
     * Creates a generator with caches from a factory.
     *
     * @param model the model
     * @param tokenizer its tokenizer
     * @param manager a manager on the model's device
     * @param cacheFactory makes one cache per layer from (manager, max tokens)
     */
    public Generator(LlamaModel model, TextTokenizer tokenizer, NDManager manager,
            BiFunction<NDManager, Long, KvCache[]> cacheFactory) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
        this.cacheFactory = Objects.requireNonNull(cacheFactory, "cacheFactory");
    }

    /** @return the model */
    public LlamaModel getModel() {
        return model;
    }

    /** @return the tokenizer */
    public TextTokenizer getTokenizer() {
        return tokenizer;
    }

    /**
     * Returns the prompt ids of a text: the tokenizer's ids, BOS first when the config asks and there is one.
     *
     * @param prompt the text
     * @param config the config
     * @return the ids
     */
    public int[] promptIds(String prompt, GenerationConfig config) {
        int[] ids = tokenizer.encode(prompt);
        if (config.isAddBos() && tokenizer.getBosId() >= 0) {
            int[] withBos = new int[ids.length + 1];
            withBos[0] = tokenizer.getBosId();
            System.arraycopy(ids, 0, withBos, 1, ids.length);
            return withBos;
        }
        return ids;
    }

    /**
     * Generates from a text prompt.
     *
     * @param prompt the prompt
     * @param config what to generate
     * @param listener receives each token as generated, or null
     * @return the result
     */
    public GenerationResult generate(String prompt, GenerationConfig config, GenerationListener listener) {
        return generate(promptIds(prompt, config), config, listener);
    }

    /**
     * Generates from prompt ids.
     *
     * @param promptIds the prompt (at least one id)
     * @param config what to generate
     * @param listener receives each token, or null
     * @return the result
     */
    public GenerationResult generate(int[] promptIds, GenerationConfig config, GenerationListener listener) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt is empty: nothing to condition on (add BOS or text)");
        }
        int vocab = model.getConfig().getVocabSize();
        for (int id : promptIds) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("prompt token id " + id + " is outside the vocabulary [0, "
                        + vocab + ")");
            }
        }
        Sampler sampler = new Sampler(config);
        StreamingDecoder decoder = tokenizer.newStreamingDecoder();
        StringBuilder text = new StringBuilder();
        int[] out = new int[config.getMaxNewTokens()];
        int n = 0;
        GenerationResult.FinishReason reason = GenerationResult.FinishReason.LENGTH;
        long t0 = System.nanoTime();
        long prefillNanos = 0;
        long kvPeak = 0;
        try (NDManager m = manager.newSubManager();
                Stream stream = openStream(m, promptIds.length + config.getMaxNewTokens())) {
            ParameterStore ps = new ParameterStore(m, false);
            int next = stream.step(ps, m, promptIds, sampler);
            while (true) {
                out[n++] = next;
                long now = System.nanoTime();
                if (n == 1) {
                    prefillNanos = now - t0;
                }
                kvPeak = Math.max(kvPeak, stream.kvBytes());
                boolean eos = config.isStopAtEos() && tokenizer.getEosIds().contains(next);
                String delta = eos ? "" : decoder.next(next);
                text.append(delta);
                if (listener != null) {
                    listener.onToken(new TokenEvent(0, next, delta, n, config.getMaxNewTokens(), now - t0, kvPeak));
                }
                if (eos) {
                    reason = GenerationResult.FinishReason.EOS;
                    break;
                }
                if (n == config.getMaxNewTokens()) {
                    break;
                }
                next = stream.step(ps, m, new int[] {next}, sampler);
            }
        }
        text.append(decoder.flush());
        long decodeNanos = System.nanoTime() - t0 - prefillNanos;
        return new GenerationResult(promptIds, Arrays.copyOf(out, n), text.toString(), reason, prefillNanos,
                decodeNanos, kvPeak);
    }

    // The KV storage of one generate call.
    private Stream openStream(NDManager m, long maxTokens) {
        if (cacheFactory != null || model.usesStreamingCaches()) {
            BiFunction<NDManager, Long, KvCache[]> f = cacheFactory != null ? cacheFactory : model::newCaches;
            return new CacheStream(f.apply(m, maxTokens));
        }
        int pages = Math.toIntExact((maxTokens + PAGE_SIZE - 1) / PAGE_SIZE);
        return new StoreStream(model.newPagedStore(pages, PAGE_SIZE));
    }

    /** One stream's KV storage and its step: new tokens in, the next token out. */
    private interface Stream extends AutoCloseable {
        int step(ParameterStore ps, NDManager m, int[] ids, Sampler sampler);

        long kvBytes();

        @Override
        void close();
    }

    /** Per-layer {@link KvCache}s through {@link LlamaModel#forward}. */
    private final class CacheStream implements Stream {
        private final KvCache[] caches;

        CacheStream(KvCache[] caches) {
            this.caches = caches;
        }

        @Override
        public int step(ParameterStore ps, NDManager m, int[] ids, Sampler sampler) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                long[] l = Arrays.stream(ids).asLongStream().toArray();
                NDArray tokens = m.create(l, new Shape(1, ids.length)); // [1, T]
                NDArray logits = model.forward(ps, tokens, caches, true); // [1, 1, vocab]
                return sampler.next(logits.reshape(-1)); // [vocab]
            }
        }

        @Override
        public long kvBytes() {
            long total = 0;
            for (KvCache c : caches) {
                total += c.memoryBytes();
            }
            return total;
        }

        @Override
        public void close() {
            for (KvCache c : caches) {
                c.close();
            }
        }
    }

    /** One sequence of a paged store through {@link LlamaModel#forwardPacked}. */
    private final class StoreStream implements Stream {
        private static final long SEQ = 0;
        private final SequenceKvStore store;

        StoreStream(SequenceKvStore store) {
            this.store = store;
            store.addSequence(SEQ);
        }

        @Override
        public int step(ParameterStore ps, NDManager m, int[] ids, Sampler sampler) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray tokens = m.create(Arrays.stream(ids).asLongStream().toArray()); // [T]
                NDArray logits = model.forwardPacked(ps, tokens, new long[] {SEQ}, new int[] {ids.length},
                        store); // [1, vocab]
                return sampler.next(logits.reshape(-1)); // [vocab]
            }
        }

        @Override
        public long kvBytes() {
            return store.memoryBytes();
        }

        @Override
        public void close() {
            store.close();
        }
    }
}
