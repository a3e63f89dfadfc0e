package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.engine.nn.DecoderAttentionBlock;
import org.flashdjl.ops.parallel.ContextParallelAttention;

/**
 * One pre-norm decoder layer, in one data flow for every family:
 *
 * <pre>
 * h   = x + attnOutNorm?(attn(attnNorm(x)))        // attnOutNorm: Gemma 2 only
 * out = h + mlpOutNorm?(mlp(mlpNorm(h)))           // mlpOutNorm: Gemma 2 only
 * </pre>
 *
 * Children, by Hugging Face name: {@code input_layernorm} (attnNorm), {@code self_attn}, {@code mlp}; Llama,
 * Mistral, Qwen2: {@code post_attention_layernorm} (mlpNorm); Gemma 2: {@code post_attention_layernorm}
 * (attnOutNorm), {@code pre_feedforward_layernorm} (mlpNorm), {@code post_feedforward_layernorm} (mlpOutNorm).
 */
public final class LlamaDecoderLayer extends AbstractBlock {

    private static final byte VERSION = 2;

    private final RmsNorm attnNorm;
    private final DecoderAttentionBlock selfAttn;
    private final RmsNorm attnOutNorm; // null but for Gemma 2
    private final RmsNorm mlpNorm;
    private final GatedMlp mlp;
    private final RmsNorm mlpOutNorm; // null but for Gemma 2

    /**
     * Creates a layer.
     *
     * @param config the architecture
     * @param attention the attention block of this layer
     */
    public LlamaDecoderLayer(LlamaConfig config, DecoderAttentionBlock attention) {
        super(VERSION);
        int h = config.getHiddenSize();
        double eps = config.getRmsNormEps();
        boolean gemma = config.isGemmaStyle();
        this.attnNorm = addChildBlock("input_layernorm", new RmsNorm(h, eps, gemma));
        this.selfAttn = addChildBlock("self_attn", attention);
        if (gemma) {
            this.attnOutNorm = addChildBlock("post_attention_layernorm", new RmsNorm(h, eps, true));
            this.mlpNorm = addChildBlock("pre_feedforward_layernorm", new RmsNorm(h, eps, true));
        } else {
            this.attnOutNorm = null;
            this.mlpNorm = addChildBlock("post_attention_layernorm", new RmsNorm(h, eps, false));
        }
        this.mlp = addChildBlock("mlp", new GatedMlp(h, config.getIntermediateSize(), config.getActivation(),
                config.isMlpBias()));
        this.mlpOutNorm = gemma ? addChildBlock("post_feedforward_layernorm", new RmsNorm(h, eps, true)) : null;
    }

    /** @return {@code input_layernorm}, the norm before attention */
    public RmsNorm getInputLayernorm() {
        return attnNorm;
    }

    /** @return self_attn */
    public DecoderAttentionBlock getSelfAttn() {
        return selfAttn;
    }

    /** @return the norm of the attention output (Gemma 2's {@code post_attention_layernorm}), or null */
    public RmsNorm getAttentionOutputNorm() {
        return attnOutNorm;
    }

    /**
     * Returns the norm before the MLP: {@code post_attention_layernorm} (Llama, Mistral, Qwen2) or
     * {@code pre_feedforward_layernorm} (Gemma 2).
     *
     * @return the norm
     */
    public RmsNorm getMlpNorm() {
        return mlpNorm;
    }

    /** @return the norm of the MLP output (Gemma 2's {@code post_feedforward_layernorm}), or null */
    public RmsNorm getMlpOutputNorm() {
        return mlpOutNorm;
    }

    /** @return mlp */
    public GatedMlp getMlp() {
        return mlp;
    }

    /**
     * Runs the layer on streams that advance together.
     *
     * @param ps the parameter store
     * @param x [B, T, hidden]
     * @param cache the layer's cache or null
     * @return [B, T, hidden]
     */
    public NDArray forward(ParameterStore ps, NDArray x, KvCache cache) {
        NDArray attn = selfAttn.forward(ps, attnNorm.forward(ps, x), cache); // [B, T, hidden]
        return residuals(ps, x, attn);
    }

    /**
     * Runs the layer on this rank's shard of a sequence split over a context-parallel group (see {@link
     * DecoderAttentionBlock#forwardContextParallel}): attention over the whole sequence with the other ranks, the
     * norms and the MLP on the shard's tokens alone.
     *
     * @param ps the parameter store
     * @param x this rank's hidden states [B, T_r, hidden]
     * @param positions int32 [B * T_r]: the tokens' global positions, row after row
     * @param attention the context-parallel attention over the group (bshd)
     * @param keysAndValues when non-null, receives the shard's rotated keys and values [B, T_r, Hkv, D]
     * @return [B, T_r, hidden]
     */
    public NDArray forwardContextParallel(ParameterStore ps, NDArray x, NDArray positions,
            ContextParallelAttention attention, NDList keysAndValues) {
        NDArray attn = selfAttn.forwardContextParallel(ps, attnNorm.forward(ps, x), positions, attention,
                keysAndValues); // [B, T_r, hidden]
        return residuals(ps, x, attn);
    }

    /**
     * Runs the layer on packed tokens of many sequences.
     *
     * @param ps the parameter store
     * @param x [N, hidden]
     * @param positions [N] stream positions
     * @param layer this layer's index
     * @param seqIds the step's sequences
     * @param counts tokens per sequence
     * @param store the KV store
     * @return [N, hidden]
     */
    public NDArray forwardPacked(ParameterStore ps, NDArray x, long[] positions, int layer, long[] seqIds,
            int[] counts, SequenceKvStore store) {
        Residual r = forwardPacked(ps, new Residual(x, null), positions, layer, seqIds, counts, store);
        return r.delta().addi(r.stream()); // [N, hidden]
    }

    /**
     * The residual stream between layers of the packed path: the sum so far and the last branch's output not yet
     * added to it. Adding it is fused into the next norm ({@link RmsNorm#addForward}), so a layer costs one launch
     * less than {@code x + branch} followed by a norm.
     *
     * @param stream the residual sum [N, hidden], owned by the forward pass (updated in place)
     * @param delta the branch output still to add [N, hidden], or null
     */
    public record Residual(NDArray stream, NDArray delta) {}

    /**
     * Runs the layer on packed tokens of many sequences, the residual addition of the previous layer fused into
     * this layer's first norm.
     *
     * @param ps the parameter store
     * @param in the residual stream (its arrays become this layer's: {@code stream} is updated in place)
     * @param positions [N] stream positions
     * @param layer this layer's index
     * @param seqIds the step's sequences
     * @param counts tokens per sequence
     * @param store the KV store
     * @return the residual stream after this layer, its MLP output pending
     */
    public Residual forwardPacked(ParameterStore ps, Residual in, long[] positions, int layer, long[] seqIds,
            int[] counts, SequenceKvStore store) {
        NDArray x = in.stream(); // [N, hidden]
        NDArray n = in.delta() == null ? attnNorm.forward(ps, x) : attnNorm.addForward(ps, x, in.delta());
        NDArray attn = selfAttn.forwardPacked(ps, n, positions, layer, seqIds, counts, store); // [N, hidden]
        return branches(ps, x, attn);
    }

    // The two residual branches after attention: x [..., hidden], attn [..., hidden] -> [..., hidden]. The fresh
    // arrays of this layer carry the sums in place (x, the caller's, is never changed): 4 launches on CUDA
    // besides the projections.
    private NDArray residuals(ParameterStore ps, NDArray x, NDArray attn) {
        Residual r = branches(ps, x, attn);
        return r.delta().addi(r.stream()); // h + m
    }

    // h = x + attn (in attn's fresh array), m = mlp(norm(h)): the stream h with m pending.
    private Residual branches(ParameterStore ps, NDArray x, NDArray attn) {
        NDArray h = attnOutNorm == null ? attn : attnOutNorm.forward(ps, attn); // [..., hidden], ours
        NDArray n = mlpNorm.addForward(ps, h, x); // h <- x + h; n = mlpNorm(h)
        NDArray m = mlp.forward(ps, n); // [..., hidden], ours
        if (mlpOutNorm != null) {
            m = mlpOutNorm.forward(ps, m);
        }
        return new Residual(h, m);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        KvCache cache = params != null && params.contains(DecoderAttentionBlock.KV_CACHE_PARAM)
                ? (KvCache) params.get(DecoderAttentionBlock.KV_CACHE_PARAM) : null;
        return new NDList(forward(ps, inputs.singletonOrThrow(), cache));
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        for (ai.djl.nn.Block child : children.values()) {
            child.initialize(manager, dataType, inputShapes);
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
