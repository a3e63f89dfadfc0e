package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.KvSegment;
import org.flashdjl.engine.cache.KvView;
import org.flashdjl.engine.cache.BatchKvView;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cascade.MergeState;
import org.flashdjl.ops.parallel.ContextParallelAttention;
import org.flashdjl.ops.transformer.TransformerOps;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The self-attention of a LLaMA-family decoder layer: a packed projection {@code qkv_proj} (Hugging Face's
 * {@code q_proj}, {@code k_proj}, {@code v_proj} stacked by rows: one matrix product), {@code o_proj} ({@code [out,
 * in]} weight layout), GQA ({@code Hq} query heads over
 * {@code Hkv} key/value heads, resolved by the attention operator, never by repeating KV heads), RoPE applied here
 * (theta, linear, llama3 or yarn scaling), causal attention with an optional sliding window and sink tokens, an
 * optional softmax scale and logit softcap (Gemma 2), through a named attention backend.
 *
 * <p>Three ways in:
 * <ul>
 *   <li>{@link #forward(ParameterStore, NDArray, KvCache)}: x {@code [B, T, hidden]} of a batch of streams that
 *       advance together, keys and values appended to the layer's {@link KvCache} (streaming decode);
 *   <li>{@link #forwardPacked}: packed tokens of many sequences of different lengths over a {@link
 *       SequenceKvStore} (continuous batching, varlen attention);
 *   <li>{@link #forwardContextParallel}: this rank's shard of a sequence split over a context-parallel group
 *       (long-context prefill across ranks, ring or Ulysses attention);
 *   <li>the {@code Block} interface: {@code NDList(x)} with an optional {@code "kv_cache"} parameter.
 * </ul>
 * Keys are cached after RoPE at their stream positions, so incremental decoding equals the full recomputation
 * under the same mask whatever the cache keeps.
 */
public final class DecoderAttentionBlock extends AbstractBlock {

    /** The forward parameter that carries a {@link KvCache} through the {@code Block} interface. */
    public static final String KV_CACHE_PARAM = "kv_cache";

    private static final byte VERSION = 2;

    private final int hiddenSize;
    private final int numHeads;
    private final int numKvHeads;
    private final int headDim;
    private final RotaryEmbedding rope;
    private final int slidingWindow;
    private final int sinkTokens;
    private final String backend;
    private final AttentionSpec spec;
    private final Linear qkvProj; // weight [(Hq + 2 Hkv) * D, hidden]: q rows, then k rows, then v rows
    private final Linear oProj; // weight [hidden, Hq * D]

    private DecoderAttentionBlock(Builder b) {
        super(VERSION);
        this.hiddenSize = b.hiddenSize;
        this.numHeads = b.numHeads;
        this.numKvHeads = b.numKvHeads;
        this.headDim = b.headDim;
        this.rope = b.rope;
        this.slidingWindow = b.slidingWindow;
        this.sinkTokens = b.sinkTokens;
        this.backend = AttentionBackends.check(b.backend);
        AttentionSpec.Builder s = AttentionSpec.builder().optCausal(true).optSoftcap(b.softcap);
        if (b.scale != null) {
            s.optScale(b.scale);
        }
        if (slidingWindow > 0) {
            s.optSlidingWindow(slidingWindow).optSinkTokens(sinkTokens);
        }
        this.spec = s.build();
        this.qkvProj = addChildBlock("qkv_proj", linear((numHeads + 2 * numKvHeads) * headDim, b.qkvBias));
        this.oProj = addChildBlock("o_proj", linear(hiddenSize, b.outputBias));
    }

    private static Linear linear(long units, boolean bias) {
        return Linear.builder().setUnits(units).optBias(bias).build();
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the packed query/key/value projection: weight [(Hq + 2 Hkv) * D, hidden], Hugging Face's {@code
     * q_proj} rows, then {@code k_proj}'s, then {@code v_proj}'s (and the biases in the same order).
     *
     * @return the packed projection
     */
    public Linear getQkvProj() {
        return qkvProj;
    }

    /** @return the output projection */
    public Linear getOProj() {
        return oProj;
    }

    /** @return the attention spec (causal, window, sinks) */
    public AttentionSpec getSpec() {
        return spec;
    }

    /** @return the backend name */
    public String getBackend() {
        return backend;
    }

    /** @return the rotary embedding */
    public RotaryEmbedding getRope() {
        return rope;
    }

    /** @return Hq */
    public int getNumHeads() {
        return numHeads;
    }

    /** @return Hkv */
    public int getNumKvHeads() {
        return numKvHeads;
    }

    /** @return D */
    public int getHeadDim() {
        return headDim;
    }

    /** @return keys a query sees, itself included, or -1 for unbounded */
    public int getSlidingWindow() {
        return slidingWindow;
    }

    /** @return sink tokens always visible with a sliding window */
    public int getSinkTokens() {
        return sinkTokens;
    }

    /**
     * Attends a batch of streams that advance together.
     *
     * @param ps the parameter store
     * @param x hidden states [B, T, hidden]
     * @param cache the layer's cache (new keys appended), or null for a standalone sequence at positions 0..T-1
     * @return the attention output [B, T, hidden]
     */
    public NDArray forward(ParameterStore ps, NDArray x, KvCache cache) {
        Shape s = x.getShape();
        if (s.dimension() != 3 || s.get(2) != hiddenSize) {
            throw new IllegalArgumentException("decoder attention takes x [batch, seq, " + hiddenSize + "], got " + s);
        }
        long b = s.get(0);
        long t = s.get(1);
        long start = cache == null ? 0 : cache.nextPosition();
        NDArray qkv = project(ps, qkvProj, x); // [B, T, (Hq + 2 Hkv) * D]
        NDArray q = heads(qkv, 0, numHeads).reshape(b, t, numHeads, headDim).transpose(0, 2, 1, 3); // [B, Hq, T, D]
        NDArray k = heads(qkv, numHeads, numKvHeads).reshape(b, t, numKvHeads, headDim)
                .transpose(0, 2, 1, 3); // [B, Hkv, T, D]
        NDArray v = heads(qkv, numHeads + numKvHeads, numKvHeads).reshape(b, t, numKvHeads, headDim)
                .transpose(0, 2, 1, 3); // [B, Hkv, T, D]
        NDArray out; // [B, Hq, T, D]
        if (cache != null && cache.isInCachePositions()) {
            // StreamingLLM: keys cached un-rotated, rotated at their slot indices on every step
            KvView view = cache.append(k, v);
            List<KvSegment> rotated = new ArrayList<>();
            for (KvSegment seg : view.getSegments()) {
                rotated.add(new KvSegment(rope.apply(seg.getKeys(), seg.getKeyStart()), seg.getValues(),
                        seg.getKeyStart()));
            }
            q = rope.apply(q, view.getQueryStart());
            out = attend(q, new KvView(rotated, view.getQueryStart()));
            NDArray merged = out.transpose(0, 2, 1, 3).reshape(b, t, (long) numHeads * headDim);
            return project(ps, oProj, merged);
        }
        q = rope.apply(q, start);
        k = rope.apply(k, start);
        if (cache == null) {
            out = Attention.forward(q, k, v, spec, backend).getOutput();
        } else {
            out = attend(q, cache.append(k, v));
        }
        NDArray merged = out.transpose(0, 2, 1, 3).reshape(b, t, (long) numHeads * headDim); // [B, T, Hq * D]
        return project(ps, oProj, merged); // [B, T, hidden]
    }

    /**
     * Attends packed tokens of many sequences (continuous batching).
     *
     * @param ps the parameter store
     * @param x packed hidden states [N, hidden], sequence after sequence, {@code counts[i]} tokens each
     * @param positions the stream position of each packed token [N]
     * @param layer this layer's index in the store
     * @param seqIds the step's sequences
     * @param counts tokens per sequence
     * @param store the KV store, already {@link SequenceKvStore#reserve reserved} for this step
     * @return the attention output [N, hidden]
     */
    public NDArray forwardPacked(ParameterStore ps, NDArray x, long[] positions, int layer, long[] seqIds,
            int[] counts, SequenceKvStore store) {
        long n = x.getShape().get(0);
        NDArray qkv = project(ps, qkvProj, x); // [N, (Hq + 2 Hkv) * D]
        NDArray[] q = new NDArray[1]; // [N, Hq, D], rotated
        // One fused kernel on CUDA: queries and keys rotated at their positions, keys and values stored at their slots
        BatchKvView kv = store.append(layer, seqIds, counts, (kSlots, vSlots, slots, pos) -> q[0] =
                TransformerOps.ropeStore(qkv, numHeads, numKvHeads, pos, rope.inverseFrequencies(qkv.getDevice()),
                        (float) rope.getAttentionScaling(), slots, kSlots, vSlots));
        if (kv == null) { // a store that takes packed keys and values
            q[0] = rope.applyPacked(heads(qkv, 0, numHeads).reshape(n, numHeads, headDim), positions);
            NDArray k = rope.applyPacked(heads(qkv, numHeads, numKvHeads).reshape(n, numKvHeads, headDim),
                    positions); // [N, Hkv, D]
            NDArray v = heads(qkv, numHeads + numKvHeads, numKvHeads).reshape(n, numKvHeads, headDim); // [N, Hkv, D]
            kv = store.append(layer, seqIds, counts, k, v);
        }
        NDArray out = kv.attend(q[0], counts, spec, backend).getOutput(); // [N, Hq, D]
        return project(ps, oProj, out.reshape(n, (long) numHeads * headDim)); // [N, hidden]
    }

    /**
     * Attends this rank's shard of a sequence split over the ranks of a context-parallel group (long-context
     * prefill across GPUs): the packed projection on the shard's tokens, RoPE at their <em>global</em> positions
     * (one fused pass with the key/value copy on CUDA, as in {@link #forwardPacked}), then this block's spec
     * (causal over the whole sequence, window, sinks, scale, softcap) through {@code attention}, which computes the
     * whole-sequence attention of the shard's queries with the other ranks (ring or Ulysses). Every rank of the
     * group calls it with its own shard, cut with {@code attention}'s sharding.
     *
     * @param ps the parameter store
     * @param x this rank's hidden states [B, T_r, hidden]
     * @param positions int32 [B * T_r]: the global position of each token, row after row
     * @param attention the context-parallel attention over the group, layout bshd
     * @param keysAndValues when non-null, receives this rank's rotated keys and its values, each [B, T_r, Hkv, D]
     *     (what a KV cache of the shard holds), in that order
     * @return the attention output of the shard [B, T_r, hidden]
     * @throws IllegalArgumentException for a shape that does not fit this block or an attention not in bshd
     */
    public NDArray forwardContextParallel(ParameterStore ps, NDArray x, NDArray positions,
            ContextParallelAttention attention, NDList keysAndValues) {
        Shape s = x.getShape();
        if (s.dimension() != 3 || s.get(2) != hiddenSize) {
            throw new IllegalArgumentException("decoder attention takes x [batch, seq, " + hiddenSize + "], got " + s);
        }
        if (attention.getLayout() != QkvLayout.BSHD) {
            throw new IllegalArgumentException("context-parallel decoder attention needs the attention's layout"
                    + " bshd (the projection's own layout), got " + attention.getLayout());
        }
        long b = s.get(0);
        long t = s.get(1);
        long n = b * t;
        NDArray qkv = project(ps, qkvProj, x).reshape(n, (long) (numHeads + 2 * numKvHeads) * headDim); // [N, ..]
        NDManager manager = qkv.getManager();
        NDArray k = manager.create(new Shape(n, numKvHeads, headDim), qkv.getDataType(), qkv.getDevice());
        NDArray v = manager.create(new Shape(n, numKvHeads, headDim), qkv.getDataType(), qkv.getDevice());
        NDArray q = TransformerOps.ropeStore(qkv, numHeads, numKvHeads, positions,
                rope.inverseFrequencies(qkv.getDevice()), (float) rope.getAttentionScaling(), null, k,
                v); // [N, Hq, D]; k, v [N, Hkv, D] written: slot = token
        NDArray kb = k.reshape(b, t, numKvHeads, headDim); // [B, T, Hkv, D]
        NDArray vb = v.reshape(b, t, numKvHeads, headDim); // [B, T, Hkv, D]
        NDArray out = attention.forward(q.reshape(b, t, numHeads, headDim), kb, vb, spec)
                .getOutput(); // [B, T, Hq, D]
        if (keysAndValues != null) {
            keysAndValues.add(kb);
            keysAndValues.add(vb);
        }
        return project(ps, oProj, out.reshape(b, t, (long) numHeads * headDim)); // [B, T, hidden]
    }

    // Attention of q [B, Hq, T, D] over the view's segments; several segments are merged by their LSE.
    private NDArray attend(NDArray q, KvView view) {
        long t = q.getShape().get(2);
        NDArray acc = null; // [B, Hq, T, D]
        NDArray accLse = null; // [B, Hq, T]
        boolean single = view.getSegments().size() == 1;
        AttentionSpec segSpec = single ? spec : spec.toBuilder().optReturnLse(true).build();
        for (KvSegment seg : view.getSegments()) {
            if (!single && MaskRule.coverage(spec, view.getQueryStart(), t, seg.getKeyStart(), seg.getLength())
                    == MaskRule.Coverage.NONE) {
                continue;
            }
            AttentionProblem p = AttentionProblem.builder(q, seg.getKeys(), seg.getValues(), segSpec)
                    .optPositions(view.getQueryStart(), seg.getKeyStart()).build();
            AttentionOutput o = Attention.forward(p, backend);
            if (single) {
                return o.getOutput();
            }
            if (acc == null) {
                acc = o.getOutput();
                accLse = o.getLse();
            } else {
                NDList merged = MergeState.mergeState(acc, accLse, o.getOutput(), o.getLse());
                acc = merged.get(0);
                accLse = merged.get(1);
            }
        }
        if (acc == null) {
            throw new IllegalStateException("the KV view has no key visible to the queries at position "
                    + view.getQueryStart());
        }
        return acc;
    }

    // Heads [first, first + count) of a packed projection [..., (Hq + 2 Hkv) * D] -> [..., count * D]
    private NDArray heads(NDArray qkv, int first, int count) {
        return qkv.get(new NDIndex("..., {}:{}", (long) first * headDim, (long) (first + count) * headDim));
    }

    private static NDArray project(ParameterStore ps, Linear linear, NDArray x) {
        return linear.forward(ps, new NDList(x), false).head();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        KvCache cache = null;
        if (params != null && params.contains(KV_CACHE_PARAM)) {
            cache = (KvCache) params.get(KV_CACHE_PARAM);
        }
        return new NDList(forward(ps, inputs.singletonOrThrow(), cache));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, hiddenSize);
        qkvProj.initialize(manager, dataType, in);
        oProj.initialize(manager, dataType, new Shape(1, (long) numHeads * headDim));
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "DecoderAttention(Hq=" + numHeads + ", Hkv=" + numKvHeads + ", D=" + headDim + ", rope(theta="
                + rope.getTheta() + ", " + rope.getScaling() + "), window=" + slidingWindow + ", sinks=" + sinkTokens
                + (spec.getScale() == null ? "" : ", scale=" + spec.getScale())
                + (spec.getSoftcap() > 0 ? ", softcap=" + spec.getSoftcap() : "") + ", backend=" + backend + ")";
    }

    /** Builds a {@link DecoderAttentionBlock}. */
    public static final class Builder {
        private int hiddenSize;
        private int numHeads;
        private int numKvHeads = -1;
        private int headDim = -1;
        private double ropeTheta = 10000;
        private RopeScaling ropeScaling = RopeScaling.none();
        private RotaryEmbedding rope;
        private int slidingWindow = -1;
        private int sinkTokens;
        private String backend = "auto";
        private boolean qkvBias;
        private boolean outputBias;
        private Float scale;
        private float softcap;

        private Builder() {}

        /**
         * Sets the model width.
         *
         * @param hiddenSize the hidden size
         * @return this builder
         */
        public Builder setHiddenSize(int hiddenSize) {
            this.hiddenSize = hiddenSize;
            return this;
        }

        /**
         * Sets the number of query heads.
         *
         * @param numHeads Hq
         * @return this builder
         */
        public Builder setNumHeads(int numHeads) {
            this.numHeads = numHeads;
            return this;
        }

        /**
         * Sets the number of key/value heads (default Hq; fewer for GQA/MQA, a divisor of Hq).
         *
         * @param numKvHeads Hkv
         * @return this builder
         */
        public Builder optNumKvHeads(int numKvHeads) {
            this.numKvHeads = numKvHeads;
            return this;
        }

        /**
         * Sets the head dim (default hidden / Hq).
         *
         * @param headDim D
         * @return this builder
         */
        public Builder optHeadDim(int headDim) {
            this.headDim = headDim;
            return this;
        }

        /**
         * Sets the RoPE base (default 10000).
         *
         * @param theta {@code rope_theta}
         * @return this builder
         */
        public Builder optRopeTheta(double theta) {
            this.ropeTheta = theta;
            return this;
        }

        /**
         * Sets the RoPE scaling (default none).
         *
         * @param scaling the scaling
         * @return this builder
         */
        public Builder optRopeScaling(RopeScaling scaling) {
            this.ropeScaling = Objects.requireNonNull(scaling, "scaling");
            return this;
        }

        /**
         * Shares a rotary embedding between layers (overrides theta and scaling).
         *
         * @param rope the embedding
         * @return this builder
         */
        public Builder optRope(RotaryEmbedding rope) {
            this.rope = rope;
            return this;
        }

        /**
         * Sets a sliding window: each query sees the {@code window} most recent keys, itself included (-1 = off).
         *
         * @param window the window, {@code >= 1} or -1
         * @return this builder
         */
        public Builder optSlidingWindow(int window) {
            if (window == 0 || window < -1) {
                throw new IllegalArgumentException("sliding window must be >= 1 or -1 (off), got " + window);
            }
            this.slidingWindow = window;
            return this;
        }

        /**
         * Sets the sink tokens that stay visible with a sliding window (StreamingLLM; default 0).
         *
         * @param sinks the number of leading tokens
         * @return this builder
         */
        public Builder optSinkTokens(int sinks) {
            if (sinks < 0) {
                throw new IllegalArgumentException("sink tokens must be >= 0, got " + sinks);
            }
            this.sinkTokens = sinks;
            return this;
        }

        /**
         * Sets the attention backend (default {@code auto}).
         *
         * @param backend a dense backend or {@code auto}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * Adds biases to the q, k, v projections (Qwen2, {@code attention_bias}).
         *
         * @param bias true for biases
         * @return this builder
         */
        public Builder optQkvBias(boolean bias) {
            this.qkvBias = bias;
            return this;
        }

        /**
         * Adds a bias to the output projection ({@code attention_bias} in LLaMA configs).
         *
         * @param bias true for a bias
         * @return this builder
         */
        public Builder optOutputBias(boolean bias) {
            this.outputBias = bias;
            return this;
        }

        /**
         * Sets the softmax scale (default {@code 1/sqrt(headDim)}; Gemma 2: {@code query_pre_attn_scalar^-0.5}).
         *
         * @param scale the scale, finite and {@code > 0}
         * @return this builder
         */
        public Builder optScale(float scale) {
            if (!(scale > 0) || Float.isInfinite(scale)) {
                throw new IllegalArgumentException("attention scale must be finite and > 0, got " + scale);
            }
            this.scale = scale;
            return this;
        }

        /**
         * Sets the attention logit softcap: {@code s = cap * tanh(s / cap)} (Gemma 2's
         * {@code attn_logit_softcapping}; default 0 = off).
         *
         * @param softcap 0 or a finite positive cap
         * @return this builder
         */
        public Builder optSoftcap(float softcap) {
            if (!(softcap >= 0) || Float.isInfinite(softcap)) {
                throw new IllegalArgumentException("softcap must be 0 (off) or finite and > 0, got " + softcap);
            }
            this.softcap = softcap;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException for inconsistent sizes or an unknown backend
         */
        public DecoderAttentionBlock build() {
            if (hiddenSize <= 0 || numHeads <= 0) {
                throw new IllegalArgumentException("hidden size and heads must be > 0, got " + hiddenSize + ", "
                        + numHeads);
            }
            if (numKvHeads < 0) {
                numKvHeads = numHeads;
            }
            if (numKvHeads == 0 || numHeads % numKvHeads != 0) {
                throw new IllegalArgumentException("query heads (" + numHeads + ") must be a multiple of key/value"
                        + " heads (" + numKvHeads + ")");
            }
            if (headDim < 0) {
                if (hiddenSize % numHeads != 0) {
                    throw new IllegalArgumentException("hidden size " + hiddenSize + " is not divisible by "
                            + numHeads + " heads; set the head dim");
                }
                headDim = hiddenSize / numHeads;
            }
            if (rope == null) {
                rope = new RotaryEmbedding(headDim, ropeTheta, ropeScaling);
            } else if (rope.getHeadDim() != headDim) {
                throw new IllegalArgumentException("rotary embedding of dim " + rope.getHeadDim() + " for head dim "
                        + headDim);
            }
            return new DecoderAttentionBlock(this);
        }
    }
}
