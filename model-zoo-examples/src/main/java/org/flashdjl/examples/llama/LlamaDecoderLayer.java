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

/**
 * One pre-norm decoder layer: {@code h = x + attn(norm1(x)); out = h + mlp(norm2(h))}. Children, by Hugging Face
 * name: {@code input_layernorm}, {@code self_attn}, {@code post_attention_layernorm}, {@code mlp}.
 */
public final class LlamaDecoderLayer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final RmsNorm inputLayernorm;
    private final DecoderAttentionBlock selfAttn;
    private final RmsNorm postAttentionLayernorm;
    private final SwiGluMlp mlp;

    /**
     * Creates a layer.
     *
     * @param config the architecture
     * @param attention the attention block of this layer
     */
    public LlamaDecoderLayer(LlamaConfig config, DecoderAttentionBlock attention) {
        super(VERSION);
        this.inputLayernorm = addChildBlock("input_layernorm", new RmsNorm(config.getHiddenSize(),
                config.getRmsNormEps()));
        this.selfAttn = addChildBlock("self_attn", attention);
        this.postAttentionLayernorm = addChildBlock("post_attention_layernorm", new RmsNorm(config.getHiddenSize(),
                config.getRmsNormEps()));
        this.mlp = addChildBlock("mlp", new SwiGluMlp(config.getHiddenSize(), config.getIntermediateSize()));
    }

    /** @return input_layernorm */
    public RmsNorm getInputLayernorm() {
        return inputLayernorm;
    }

    /** @return self_attn */
    public DecoderAttentionBlock getSelfAttn() {
        return selfAttn;
    }

    /** @return post_attention_layernorm */
    public RmsNorm getPostAttentionLayernorm() {
        return postAttentionLayernorm;
    }

    /** @return mlp */
    public SwiGluMlp getMlp() {
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
        NDArray h = x.add(selfAttn.forward(ps, inputLayernorm.forward(ps, x), cache)); // [B, T, hidden]
        return h.add(mlp.forward(ps, postAttentionLayernorm.forward(ps, h))); // [B, T, hidden]
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
        NDArray h = x.add(selfAttn.forwardPacked(ps, inputLayernorm.forward(ps, x), positions, layer, seqIds, counts,
                store)); // [N, hidden]
        return h.add(mlp.forward(ps, postAttentionLayernorm.forward(ps, h))); // [N, hidden]
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
