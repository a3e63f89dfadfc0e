package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.ContiguousKvCache;
import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.parallel.ContextParallel;
import org.flashdjl.ops.parallel.ContextParallelAttention;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ReduceOp;
import org.flashdjl.ops.parallel.nccl.Distributed;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.IntConsumer;

/**
 * Long-context prefill of a {@link LlamaModel} across the ranks of a context-parallel {@link ProcessGroup}: the
 * prompt's sequence is sharded over the ranks, each rank runs every layer on its own tokens, attention goes
 * through {@link ContextParallelAttention} (ring with zigzag causal balance, or Ulysses), and every rank ends with
 * the logits of the prompt's last position, the next-token distribution (time to first token).
 *
 * <pre>{@code
 * // on every rank: one process per GPU (group = Distributed.init()), or LocalProcessGroup threads on the CPU;
 * // each rank has loaded the same checkpoint on its own device
 * try (ContextParallelPrefill prefill = ContextParallelPrefill.builder().setModel(model).setGroup(group)
 *         .optMethod(ContextParallelAttention.Method.RING).build();              // zigzag sharding by default
 *         ContextParallelPrefill.Result r = prefill.prefill(tokens)) {           // [B, L], the same on every rank
 *     NDArray logits = r.getLastLogits();                                       // [B, vocab] fp32, every rank
 * }
 * }</pre>
 *
 * <p>What each rank does, for a prompt of L tokens over w ranks:
 * <ul>
 *   <li>checks the prompt (shape, token ids) and, in one {@code allGatherLongs}, that every rank holds the same
 *       prompt and configuration (batch, length, a hash of the ids, method, sharding, model sizes): a rank given a
 *       different prompt makes every rank fail alike, naming the rank;
 *   <li>cuts its shard with the sharding ({@link SequenceSharding#ZIGZAG}: chunks r and 2w-1-r of 2w, the ring's
 *       causal balance; {@link SequenceSharding#CONTIGUOUS}: chunk r of w, the default for Ulysses) and the
 *       tokens' <em>global</em> positions, where RoPE rotates them;
 *   <li>runs the layers ({@link LlamaDecoderLayer#forwardContextParallel}): projections, norms and MLP on its
 *       T_r tokens; attention with each layer's own spec (causal over the whole prompt, the layer's sliding window
 *       and sinks, scale, softcap) over the whole sequence, computed with the other ranks by one {@code
 *       ContextParallelAttention} (bshd) shared by the layers;
 *   <li>the rank that holds token L-1 computes its logits; one {@code allReduce} (the others contribute zeros, so
 *       the sum is exact) gives them to every rank.
 * </ul>
 *
 * <p>With a group of one rank this is the model's prefill of the whole prompt through the same code (attention is
 * then {@code Attention.forward}). On GPUs with an NCCL group, fp16 GPU NDArrays and the {@code flash} or {@code
 * auto} backend, attention runs on device memory ({@code DeviceRingAttention} / {@code DeviceUlyssesAttention}),
 * whose scratch lives until {@link #close()}.
 *
 * <p>Requirements: every rank calls {@link #prefill} with the same prompt, in the same order as every other
 * collective of the group; each rank holds at least one token (L &ge; 2w for zigzag, L &ge; w for contiguous);
 * Ulysses needs the query heads to divide by w. Failures: a check fails on every rank alike before any
 * communication, or (prompt mismatch) right after the first collective, leaving the group usable. Any failure
 * after that (a peer that died or timed out, an error on this rank) <b>aborts the group</b> before it is rethrown:
 * the ranks' collectives are out of step from then on, and a local group's other ranks then fail at once with
 * this rank's reason instead of waiting out the timeout (an NCCL group's other processes fail at their own
 * timeout). Every wait is bounded by the group's {@link ProcessGroup#timeout()}.
 *
 * <p>Optionally the result keeps this rank's rotated keys and values of every layer ({@link
 * Builder#optKeepKeysAndValues}) and {@link Result#gatherCaches} assembles them into whole-sequence {@link
 * ContiguousKvCache}s on every rank, so decoding continues with {@link LlamaModel#forward} at position L on one
 * device.
 */
public final class ContextParallelPrefill implements AutoCloseable {

    // The fields of the first collective, compared across ranks.
    private static final String[] AGREED = {"batch", "prompt length", "prompt hash", "method", "sharding", "layers",
        "hidden size", "vocabulary"};

    private final LlamaModel model;
    private final ProcessGroup group;
    private final ContextParallelAttention.Method method;
    private final SequenceSharding sharding;
    private final boolean keepKv;
    private final boolean shardLogits;
    private final IntConsumer afterLayer;
    private final ContextParallelAttention attention;

    private ContextParallelPrefill(Builder b) {
        this.model = b.model;
        this.group = b.group;
        this.method = b.method;
        this.sharding = b.sharding != null ? b.sharding
                : b.method == ContextParallelAttention.Method.RING ? SequenceSharding.ZIGZAG
                        : SequenceSharding.CONTIGUOUS;
        this.keepKv = b.keepKv;
        this.shardLogits = b.shardLogits;
        this.afterLayer = b.afterLayer;
        String backend = b.backend != null ? b.backend : model.getOptions().getBackend();
        this.attention = ContextParallelAttention.builder().optLayout("bshd").optBackend(backend).optMethod(method)
                .optSharding(sharding).optConvertToFp32(true).optContextParallelGroup(group).build();
        attention.checkHeads(model.getConfig().getNumHeads(), group.size());
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the model */
    public LlamaModel getModel() {
        return model;
    }

    /** @return the process group */
    public ProcessGroup getGroup() {
        return group;
    }

    /** @return ring or Ulysses */
    public ContextParallelAttention.Method getMethod() {
        return method;
    }

    /** @return how the prompt is cut over the ranks */
    public SequenceSharding getSharding() {
        return sharding;
    }

    /** @return the local attention backend's name */
    public String getBackend() {
        return attention.getBackend();
    }

    /**
     * Returns the shortest prompt this prefill takes on its group: one token per chunk of the sharding, so that
     * every rank holds some ({@code 2 w} for zigzag, {@code w} for contiguous, 1 on one rank).
     *
     * @return the minimum prompt length
     */
    public long minimumLength() {
        return group.size() == 1 ? 1 : sharding.chunkCount(group.size());
    }

    /**
     * Prefills a prompt given as ids (batch 1); see {@link #prefill(NDArray)}.
     *
     * @param manager the manager (and device) of the result
     * @param prompt the token ids, the same on every rank
     * @return this rank's result, owned by {@code manager} (and the caller's scope)
     */
    public Result prefill(NDManager manager, int[] prompt) {
        Objects.requireNonNull(prompt, "prompt");
        try (NDArray tokens = manager.create(Arrays.stream(prompt).asLongStream().toArray(),
                new Shape(1, prompt.length))) { // [1, L]
            return prefill(tokens);
        }
    }

    /**
     * Prefills a prompt across the group: a collective, every rank calls it with the same tokens.
     *
     * @param tokens the whole prompt's ids [B, L] (int32 or int64), the same on every rank, on this rank's device
     * @return this rank's result: the last position's logits (every rank), and what the builder asked to keep;
     *     arrays on the tokens' manager, in the caller's {@code NDScope} if any
     * @throws IllegalArgumentException for a bad prompt (naming the problem), or a prompt or configuration that
     *     differs between the ranks (naming the rank and the field)
     * @throws org.flashdjl.ops.parallel.group.ProcessGroupException when a peer fails or a wait times out (the
     *     group is then aborted)
     */
    public Result prefill(NDArray tokens) {
        long[] ids = checkPrompt(tokens);
        long batch = tokens.getShape().get(0);
        long length = tokens.getShape().get(1);
        int world = group.size();
        int rank = group.rank();
        LlamaConfig c = model.getConfig();
        long[] mine = {batch, length, hash(ids), method.ordinal(), sharding.ordinal(), c.getNumLayers(),
            c.getHiddenSize(), c.getVocabSize()};
        if (world > 1) {
            long[] all;
            try {
                all = group.allGatherLongs(mine);
            } catch (RuntimeException | Error e) {
                abort(e);
                throw e;
            }
            checkAgreement(all, mine.length);
        }
        List<SequenceSharding.Piece> pieces = sharding.pieces(length, rank, world);
        int lastTokenRank = lastTokenRank(length);
        long lastRow = rank == lastTokenRank ? localRow(pieces, length - 1) : -1;
        try (OpScope scope = new OpScope()) {
            NDManager manager = tokens.getManager();
            NDArray shard = world == 1 ? tokens : ContextParallel.shard(tokens, 1, rank, world, sharding); // [B, T_r]
            long local = shard.getShape().get(1);
            NDArray positions = manager.create(positions(pieces, batch, local)); // int32 [B * T_r]
            if (!positions.getDevice().equals(tokens.getDevice())) {
                positions = positions.toDevice(tokens.getDevice(), false);
            }
            List<NDArray> keys = keepKv ? new ArrayList<>() : null;
            List<NDArray> values = keepKv ? new ArrayList<>() : null;
            long from = shardLogits ? 0 : Math.max(lastRow, 0);
            long to = shardLogits ? local : lastRow + 1;
            NDArray logits = model.forwardContextParallel(new ParameterStore(manager, false), shard, positions,
                    attention, from, to, keys, values, afterLayer); // [B, to - from, vocab] or null
            NDArray last; // [B, vocab] fp32
            if (lastRow >= 0) {
                last = logits.get(new NDIndex(":, {}, :", lastRow - from)).duplicate();
            } else {
                last = manager.zeros(new Shape(batch, c.getVocabSize()), DataType.FLOAT32, tokens.getDevice());
            }
            if (world > 1) {
                group.allReduce(last, ReduceOp.SUM); // exact: one rank's logits plus zeros
            }
            scope.ret(last);
            if (shardLogits) {
                scope.ret(logits);
            }
            if (keepKv) {
                keys.forEach(scope::ret);
                values.forEach(scope::ret);
            }
            return new Result(this, last, shardLogits ? logits : null, keys, values, length, pieces,
                    lastTokenRank);
        } catch (RuntimeException | Error e) {
            abort(e);
            throw e;
        }
    }

    // The host copy of the ids after checking the prompt: [B, L], integer ids in [0, vocab).
    private long[] checkPrompt(NDArray tokens) {
        Objects.requireNonNull(tokens, "tokens");
        Shape s = tokens.getShape();
        if (s.dimension() != 2 || s.get(0) < 1 || s.get(1) < 1) {
            throw new IllegalArgumentException("tokens must be [batch, seq] with batch >= 1 and seq >= 1, got " + s);
        }
        DataType type = tokens.getDataType();
        if (type != DataType.INT32 && type != DataType.INT64) {
            throw new IllegalArgumentException("tokens must be int32 or int64 ids, got " + type);
        }
        long length = s.get(1);
        if (length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a prompt of " + length + " tokens is longer than positions can say"
                    + " (int32); allowed: up to " + Integer.MAX_VALUE);
        }
        if (length < minimumLength()) {
            throw new IllegalArgumentException("a prompt of " + length + " tokens is too short for " + method
                    + " over " + group.size() + " ranks with " + sharding.name().toLowerCase(Locale.ROOT)
                    + " sharding: every rank must hold a token, which needs at least " + minimumLength()
                    + " tokens (one per chunk); prefill it on one rank");
        }
        long[] ids = type == DataType.INT64 ? tokens.toLongArray()
                : Arrays.stream(tokens.toIntArray()).asLongStream().toArray();
        int vocab = model.getConfig().getVocabSize();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException("token id " + ids[i] + " at [" + i / length + ", " + i % length
                        + "] is outside the vocabulary; allowed: 0.." + (vocab - 1));
            }
        }
        return ids;
    }

    // Every rank compares every rank's fields with rank 0's, so all ranks reach the same verdict.
    private void checkAgreement(long[] all, int fields) {
        StringBuilder diff = new StringBuilder();
        for (int r = 1; r < group.size(); r++) {
            for (int f = 0; f < fields; f++) {
                long want = all[f];
                long got = all[r * fields + f];
                if (got != want) {
                    diff.append(diff.length() == 0 ? "" : "; ").append("rank ").append(r).append(' ')
                            .append(AGREED[f]).append(' ').append(describe(f, got)).append(" vs rank 0's ")
                            .append(describe(f, want));
                }
            }
        }
        if (diff.length() > 0) {
            throw new IllegalArgumentException("every rank must prefill the same prompt with the same model and"
                    + " settings, but " + diff);
        }
    }

    private static String describe(int field, long value) {
        switch (AGREED[field]) {
            case "prompt hash":
                return String.format(Locale.ROOT, "%016x", value);
            case "method":
                return ContextParallelAttention.Method.values()[(int) value].toString();
            case "sharding":
                return SequenceSharding.values()[(int) value].name().toLowerCase(Locale.ROOT);
            default:
                return Long.toString(value);
        }
    }

    // FNV-1a over the ids.
    private static long hash(long[] ids) {
        long h = 0xcbf29ce484222325L;
        for (long id : ids) {
            for (int i = 0; i < 8; i++) {
                h ^= (id >>> (8 * i)) & 0xff;
                h *= 0x100000001b3L;
            }
        }
        return h;
    }

    // The rank holding the prompt's last token under this prefill's sharding.
    private int lastTokenRank(long length) {
        for (int r = 0; r < group.size(); r++) {
            if (localRow(sharding.pieces(length, r, group.size()), length - 1) >= 0) {
                return r;
            }
        }
        throw new IllegalStateException("no rank holds token " + (length - 1) + " of " + length);
    }

    // The shard row of a global position, or -1 when the shard does not hold it.
    private static long localRow(List<SequenceSharding.Piece> pieces, long position) {
        for (SequenceSharding.Piece p : pieces) {
            if (position >= p.globalStart() && position < p.globalStart() + p.length()) {
                return p.localStart() + position - p.globalStart();
            }
        }
        return -1;
    }

    /**
     * Returns the global positions of a shard's tokens, row after row of the batch.
     *
     * @param pieces the shard's pieces
     * @param batch B
     * @param local the shard's length T_r
     * @return int32 positions [B * T_r]
     */
    static int[] positions(List<SequenceSharding.Piece> pieces, long batch, long local) {
        int[] pos = new int[Math.toIntExact(batch * local)];
        for (int b = 0; b < batch; b++) {
            for (SequenceSharding.Piece p : pieces) {
                for (long j = 0; j < p.length(); j++) {
                    pos[(int) (b * local + p.localStart() + j)] = (int) (p.globalStart() + j);
                }
            }
        }
        return pos;
    }

    // Aborts the group after a failure that leaves the ranks' collectives out of step.
    private void abort(Throwable failure) {
        if (group.size() > 1) {
            try {
                group.abort(failure);
            } catch (RuntimeException e) {
                failure.addSuppressed(e);
            }
        }
    }

    /** Frees the device scratch of the GPU attention path (the model and the group stay open). */
    @Override
    public void close() {
        attention.close();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "ContextParallelPrefill{" + method + ", " + sharding.name().toLowerCase(Locale.ROOT) + ", backend="
                + attention.getBackend() + ", rank " + group.rank() + "/" + group.size() + "}";
    }

    /**
     * One rank's outcome of a prefill: the last position's logits (the same on every rank), and this rank's shard
     * logits and keys/values when the builder asked for them. Closing it frees those arrays.
     */
    public static final class Result implements AutoCloseable {
        private final ContextParallelPrefill prefill;
        private final NDArray lastLogits;
        private final NDArray shardLogits;
        private final List<NDArray> keys;
        private final List<NDArray> values;
        private final long length;
        private final List<SequenceSharding.Piece> pieces;
        private final int lastTokenRank;

        Result(ContextParallelPrefill prefill, NDArray lastLogits, NDArray shardLogits, List<NDArray> keys,
                List<NDArray> values, long length, List<SequenceSharding.Piece> pieces, int lastTokenRank) {
            this.prefill = prefill;
            this.lastLogits = lastLogits;
            this.shardLogits = shardLogits;
            this.keys = keys == null ? Collections.emptyList() : Collections.unmodifiableList(keys);
            this.values = values == null ? Collections.emptyList() : Collections.unmodifiableList(values);
            this.length = length;
            this.pieces = pieces;
            this.lastTokenRank = lastTokenRank;
        }

        /** @return the logits of the prompt's last position [B, vocab] fp32, identical on every rank */
        public NDArray getLastLogits() {
            return lastLogits;
        }

        /**
         * Returns the logits of every token of this rank's shard, in shard order (see {@link #getPieces()}).
         *
         * @return [B, T_r, vocab] fp32
         * @throws IllegalStateException unless the builder asked for them
         */
        public NDArray getShardLogits() {
            if (shardLogits == null) {
                throw new IllegalStateException("shard logits were not kept: build the prefill with"
                        + " optShardLogits(true)");
            }
            return shardLogits;
        }

        /**
         * Returns this rank's rotated keys of every layer, in shard order.
         *
         * @return per layer [B, T_r, Hkv, D]; empty unless the builder asked to keep them
         */
        public List<NDArray> getKeys() {
            return keys;
        }

        /**
         * Returns this rank's values of every layer, in shard order.
         *
         * @return per layer [B, T_r, Hkv, D]; empty unless the builder asked to keep them
         */
        public List<NDArray> getValues() {
            return values;
        }

        /** @return the prompt length L (the position of the next token) */
        public long getLength() {
            return length;
        }

        /** @return this rank's pieces of the prompt: where each run of its shard sits in the whole sequence */
        public List<SequenceSharding.Piece> getPieces() {
            return pieces;
        }

        /** @return the rank that held the prompt's last token (and computed its logits) */
        public int getLastTokenRank() {
            return lastTokenRank;
        }

        /**
         * Assembles every rank's keys and values into whole-sequence caches on this rank, so decoding continues on
         * one device with {@link LlamaModel#forward(ParameterStore, NDArray, KvCache[], boolean)} at position
         * {@link #getLength()}: a collective (one {@code allToAll} of keys and one of values per layer), every rank
         * calls it. Each rank then holds the whole cache: 2 x layers x L x Hkv x D values.
         *
         * @param manager the parent manager of the caches
         * @return one {@link ContiguousKvCache} per layer holding positions 0..L-1 (stream positions, any window
         *     applied by the layer's mask at attention time)
         * @throws IllegalStateException when keys and values were not kept, or the model's options want in-cache
         *     RoPE positions (keys are rotated at stream positions here)
         */
        public KvCache[] gatherCaches(NDManager manager) {
            if (keys.isEmpty()) {
                throw new IllegalStateException("keys and values were not kept: build the prefill with"
                        + " optKeepKeysAndValues(true)");
            }
            if (prefill.model.getOptions().getRopePositions() == StreamingKvCache.Positions.IN_CACHE) {
                throw new IllegalStateException("the model's options want in-cache RoPE positions (StreamingLLM);"
                        + " the prefill's keys are rotated at stream positions: use stream positions to continue");
            }
            ProcessGroup group = prefill.group;
            KvCache[] caches = new KvCache[keys.size()];
            try {
                for (int i = 0; i < caches.length; i++) {
                    try (OpScope scope = new OpScope()) {
                        NDArray k = gather(group, keys.get(i)); // [B, L, Hkv, D]
                        NDArray v = gather(group, values.get(i));
                        caches[i] = new ContiguousKvCache(manager, -1);
                        caches[i].append(k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)); // [B, Hkv, L, D]
                    }
                }
                return caches;
            } catch (RuntimeException | Error e) {
                for (KvCache c : caches) {
                    if (c != null) {
                        c.close();
                    }
                }
                prefill.abort(e);
                throw e;
            }
        }

        // Every rank's shard of one tensor, put back in sequence order: [B, L, ...].
        private NDArray gather(ProcessGroup group, NDArray shard) {
            if (group.size() == 1) {
                return shard;
            }
            NDArray[] chunks = new NDArray[group.size()];
            Arrays.fill(chunks, shard); // the same shard to every rank (chunks may differ in length across ranks)
            return ContextParallel.unshard(group.allToAll(chunks), 1, prefill.sharding);
        }

        /** Frees the arrays of this result. */
        @Override
        public void close() {
            lastLogits.close();
            if (shardLogits != null) {
                shardLogits.close();
            }
            keys.forEach(NDArray::close);
            values.forEach(NDArray::close);
        }
    }

    /** Builds a {@link ContextParallelPrefill}: the model and the group are required. */
    public static final class Builder {
        private LlamaModel model;
        private ProcessGroup group;
        private ContextParallelAttention.Method method = ContextParallelAttention.Method.RING;
        private SequenceSharding sharding;
        private String backend;
        private boolean keepKv;
        private boolean shardLogits;
        private IntConsumer afterLayer;

        private Builder() {}

        /**
         * Sets the model (this rank's copy, on this rank's device).
         *
         * @param model the model
         * @return this builder
         */
        public Builder setModel(LlamaModel model) {
            this.model = Objects.requireNonNull(model, "model");
            return this;
        }

        /**
         * Sets the context-parallel group ({@link Distributed#init()} across processes, {@code
         * LocalProcessGroup} across threads, a one-rank group for a plain prefill).
         *
         * @param group this rank's group
         * @return this builder
         */
        public Builder setGroup(ProcessGroup group) {
            this.group = Objects.requireNonNull(group, "group");
            return this;
        }

        /**
         * Sets the context-parallel method (default ring).
         *
         * @param method ring or Ulysses
         * @return this builder
         */
        public Builder optMethod(ContextParallelAttention.Method method) {
            this.method = Objects.requireNonNull(method, "method");
            return this;
        }

        /**
         * Sets the method by name.
         *
         * @param method {@code "ring"} or {@code "ulysses"}
         * @return this builder
         * @throws IllegalArgumentException naming the allowed values
         */
        public Builder optMethod(String method) {
            return optMethod(ContextParallelAttention.Method.of(method));
        }

        /**
         * Sets how the prompt is cut over the ranks (default zigzag for the ring, contiguous for Ulysses).
         *
         * @param sharding the sharding
         * @return this builder
         */
        public Builder optSharding(SequenceSharding sharding) {
            this.sharding = Objects.requireNonNull(sharding, "sharding");
            return this;
        }

        /**
         * Sets the attention backend each rank runs its blocks with (default: the model's options' backend).
         *
         * @param backend a dense backend name or {@code auto}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * Keeps this rank's rotated keys and values of every layer in the result (for {@link
         * Result#gatherCaches}; default false).
         *
         * @param keep true to keep them
         * @return this builder
         */
        public Builder optKeepKeysAndValues(boolean keep) {
            this.keepKv = keep;
            return this;
        }

        /**
         * Computes the logits of every token of this rank's shard, not only of the last position (default false:
         * a vocabulary-wide product per token costs as much as a layer's MLP at Llama-3 sizes).
         *
         * @param shardLogits true for {@link Result#getShardLogits()}
         * @return this builder
         */
        public Builder optShardLogits(boolean shardLogits) {
            this.shardLogits = shardLogits;
            return this;
        }

        /**
         * Sets a listener called on this rank's thread after each layer with its index (progress of a long
         * prefill).
         *
         * @param afterLayer the listener, or null
         * @return this builder
         */
        public Builder optLayerListener(IntConsumer afterLayer) {
            this.afterLayer = afterLayer;
            return this;
        }

        /**
         * Builds the prefill; checks what can be checked without communicating.
         *
         * @return the prefill
         * @throws IllegalArgumentException when the model or group is missing, the backend is unknown, or Ulysses
         *     cannot split the model's query heads over the group
         */
        public ContextParallelPrefill build() {
            if (model == null || group == null) {
                throw new IllegalArgumentException("a context-parallel prefill needs " + (model == null
                        ? "a model (setModel)" : "a process group (setGroup)"));
            }
            return new ContextParallelPrefill(this);
        }
    }
}
