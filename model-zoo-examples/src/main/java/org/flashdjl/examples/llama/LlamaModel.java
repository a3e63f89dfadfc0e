package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import org.flashdjl.engine.cache.ContiguousKvCache;
import org.flashdjl.engine.cache.ContiguousSequenceKvStore;
import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.PagedSequenceKvStore;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.engine.nn.DecoderAttentionBlock;
import org.flashdjl.engine.nn.RotaryEmbedding;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LLaMA-family causal LM as a DJL {@code Block}, one data flow in the manner of llama3.java:
 *
 * <pre>
 * x      = embed_tokens[tokens]                          // [B, T, hidden]
 * for each layer:
 *   x    = x + o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(..)), v_proj(..)))  // GQA, causal (+window, sinks)
 *   x    = x + down_proj(silu(gate_proj(norm(x))) * up_proj(norm(x)))
 * logits = lm_head(norm(x))                              // [B, T, vocab] fp32 (lm_head = embed_tokens if tied)
 * </pre>
 *
 * <p>Children carry Hugging Face's names ({@code embed_tokens}, {@code layers_i}, {@code norm}, {@code lm_head});
 * {@link #parametersByCheckpointName()} maps every checkpoint tensor name ({@code model.layers.0.mlp.up_proj.weight},
 * ...) to its parameter and {@link #expectedShapes()} to its shape.
 */
public final class LlamaModel extends AbstractBlock {

    /** The forward parameter carrying a {@code KvCache[]} (one per layer) through the {@code Block} interface. */
    public static final String KV_CACHES_PARAM = "kv_caches";

    private static final byte VERSION = 1;

    private final LlamaConfig config;
    private final AttentionOptions options;
    private final Parameter embedTokens; // [vocab, hidden]
    private final List<LlamaDecoderLayer> layers;
    private final RmsNorm norm;
    private final Linear lmHead; // weight [vocab, hidden]; null when tied

    /**
     * Builds the (uninitialised) model.
     *
     * @param config the architecture
     * @param options attention backend, window and sinks
     */
    public LlamaModel(LlamaConfig config, AttentionOptions options) {
        super(VERSION);
        this.config = config;
        this.options = options;
        this.embedTokens = addParameter(Parameter.builder().setName("embed_tokens").setType(Parameter.Type.WEIGHT)
                .optInitializer(new NormalInitializer(0.02f)).build());
        int window = options.getSlidingWindow() == 0 ? config.getSlidingWindow() : options.getSlidingWindow();
        RotaryEmbedding rope = new RotaryEmbedding(config.getHeadDim(), config.getRopeTheta(),
                config.getRopeScaling());
        List<LlamaDecoderLayer> list = new ArrayList<>();
        for (int i = 0; i < config.getNumLayers(); i++) {
            DecoderAttentionBlock attn = DecoderAttentionBlock.builder().setHiddenSize(config.getHiddenSize())
                    .setNumHeads(config.getNumHeads()).optNumKvHeads(config.getNumKvHeads())
                    .optHeadDim(config.getHeadDim()).optRope(rope).optSlidingWindow(window > 0 ? window : -1)
                    .optSinkTokens(window > 0 ? options.getSinkTokens() : 0).optBackend(options.getBackend())
                    .optQkvBias(config.isQkvBias()).optOutputBias(config.isAttentionBias()).build();
            list.add(addChildBlock("layers_" + i, new LlamaDecoderLayer(config, attn)));
        }
        this.layers = Collections.unmodifiableList(list);
        this.norm = addChildBlock("norm", new RmsNorm(config.getHiddenSize(), config.getRmsNormEps()));
        this.lmHead = config.isTieWordEmbeddings() ? null
                : addChildBlock("lm_head", Linear.builder().setUnits(config.getVocabSize()).optBias(false).build());
    }

    /** @return the architecture */
    public LlamaConfig getConfig() {
        return config;
    }

    /** @return the attention options */
    public AttentionOptions getOptions() {
        return options;
    }

    /** @return the decoder layers */
    public List<LlamaDecoderLayer> getLayers() {
        return layers;
    }

    /**
     * Returns every parameter under its checkpoint (Hugging Face) name.
     *
     * @return name to parameter, in checkpoint order
     */
    public Map<String, Parameter> parametersByCheckpointName() {
        Map<String, Parameter> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", embedTokens);
        for (int i = 0; i < layers.size(); i++) {
            LlamaDecoderLayer l = layers.get(i);
            String p = "model.layers." + i + ".";
            DecoderAttentionBlock a = l.getSelfAttn();
            m.put(p + "input_layernorm.weight", l.getInputLayernorm().getWeight());
            putLinear(m, p + "self_attn.q_proj", a.getQProj());
            putLinear(m, p + "self_attn.k_proj", a.getKProj());
            putLinear(m, p + "self_attn.v_proj", a.getVProj());
            putLinear(m, p + "self_attn.o_proj", a.getOProj());
            m.put(p + "post_attention_layernorm.weight", l.getPostAttentionLayernorm().getWeight());
            putLinear(m, p + "mlp.gate_proj", l.getMlp().getGateProj());
            putLinear(m, p + "mlp.up_proj", l.getMlp().getUpProj());
            putLinear(m, p + "mlp.down_proj", l.getMlp().getDownProj());
        }
        m.put("model.norm.weight", norm.getWeight());
        if (lmHead != null) {
            putLinear(m, "lm_head", lmHead);
        }
        return m;
    }

    private static void putLinear(Map<String, Parameter> m, String prefix, Linear linear) {
        m.put(prefix + ".weight", linear.getParameters().get("weight"));
        if (linear.getParameters().contains("bias")) {
            m.put(prefix + ".bias", linear.getParameters().get("bias"));
        }
    }

    /**
     * Returns the shape every checkpoint tensor must have.
     *
     * @return name to shape, in checkpoint order
     */
    public Map<String, Shape> expectedShapes() {
        long h = config.getHiddenSize();
        long q = (long) config.getNumHeads() * config.getHeadDim();
        long kv = (long) config.getNumKvHeads() * config.getHeadDim();
        long im = config.getIntermediateSize();
        long v = config.getVocabSize();
        Map<String, Shape> m = new LinkedHashMap<>();
        for (String name : parametersByCheckpointName().keySet()) {
            Shape s;
            if (name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight")) {
                s = new Shape(v, h);
            } else if (name.endsWith("layernorm.weight") || name.equals("model.norm.weight")) {
                s = new Shape(h);
            } else if (name.contains("q_proj")) {
                s = name.endsWith("bias") ? new Shape(q) : new Shape(q, h);
            } else if (name.contains("k_proj") || name.contains("v_proj")) {
                s = name.endsWith("bias") ? new Shape(kv) : new Shape(kv, h);
            } else if (name.contains("o_proj")) {
                s = name.endsWith("bias") ? new Shape(h) : new Shape(h, q);
            } else if (name.contains("gate_proj") || name.contains("up_proj")) {
                s = new Shape(im, h);
            } else if (name.contains("down_proj")) {
                s = new Shape(h, im);
            } else {
                throw new IllegalStateException("no shape rule for " + name);
            }
            m.put(name, s);
        }
        return m;
    }

    /** @return keys each query sees (itself included), or -1 when the model attends to everything before */
    public int getSlidingWindow() {
        return layers.get(0).getSelfAttn().getSlidingWindow();
    }

    /**
     * Creates one KV cache per layer for a single stream: with a sliding window and {@link
     * AttentionOptions#isStreamingCache()}, a fixed-size {@link StreamingKvCache} (sinks + window over {@code
     * BlockKvCache}); otherwise a {@link ContiguousKvCache}.
     *
     * @param manager the parent manager of the caches
     * @param maxLength the most tokens per stream, or -1 (contiguous caches only)
     * @return the caches
     */
    public KvCache[] newCaches(NDManager manager, long maxLength) {
        return newCaches(manager, 1, maxLength);
    }

    /**
     * Creates one KV cache per layer for {@code batch} streams that advance together.
     *
     * @param manager the parent manager of the caches
     * @param batch the number of streams
     * @param maxLength the most tokens per stream, or -1 (contiguous caches only)
     * @return the caches
     */
    public KvCache[] newCaches(NDManager manager, int batch, long maxLength) {
        KvCache[] caches = new KvCache[layers.size()];
        int window = getSlidingWindow();
        boolean streaming = window > 0 && options.isStreamingCache();
        if (!streaming && options.getRopePositions() == StreamingKvCache.Positions.IN_CACHE) {
            throw new IllegalStateException("in-cache RoPE positions need a sliding window and the streaming cache");
        }
        DataType type = embedTokens.getArray().getDataType();
        for (int i = 0; i < caches.length; i++) {
            caches[i] = streaming
                    ? new StreamingKvCache(manager, batch, config.getNumKvHeads(), config.getHeadDim(), type, window,
                            layers.get(i).getSelfAttn().getSinkTokens(), options.getRopePositions())
                    : new ContiguousKvCache(manager, maxLength);
        }
        return caches;
    }

    /**
     * Creates a KV store for continuous batching.
     *
     * @param manager the parent manager
     * @return the store
     */
    public SequenceKvStore newSequenceStore(NDManager manager) {
        return new ContiguousSequenceKvStore(manager, layers.size());
    }

    /**
     * Creates a paged KV store for continuous batching ({@code PagedKvCache}: page pools allocated once, page
     * tables per sequence, prefix sharing on fork; attention straight from the pages).
     *
     * @param numPages pages per pool (capacity: numPages x pageSize tokens over all sequences)
     * @param pageSize tokens per page
     * @return the store
     */
    public SequenceKvStore newPagedStore(int numPages, int pageSize) {
        NDArray table = embedTokens.getArray();
        return PagedSequenceKvStore.create(layers.size(), config.getNumKvHeads(), config.getHeadDim(),
                table.getDataType(), table.getDevice(), numPages, pageSize, "auto");
    }

    /**
     * Runs streams that advance together.
     *
     * @param ps the parameter store
     * @param tokens token ids [B, T] (int32 or int64)
     * @param caches one cache per layer, or null for a standalone forward at positions 0..T-1
     * @param lastOnly whether to compute logits for the last position only
     * @return logits [B, T, vocab] (or [B, 1, vocab]) in fp32
     */
    public NDArray forward(ParameterStore ps, NDArray tokens, KvCache[] caches, boolean lastOnly) {
        if (tokens.getShape().dimension() != 2) {
            throw new IllegalArgumentException("tokens must be [batch, seq], got " + tokens.getShape());
        }
        if (caches != null && caches.length != layers.size()) {
            throw new IllegalArgumentException(caches.length + " caches for " + layers.size() + " layers");
        }
        NDArray x = embed(ps, tokens); // [B, T, hidden]
        for (int i = 0; i < layers.size(); i++) {
            x = layers.get(i).forward(ps, x, caches == null ? null : caches[i]); // [B, T, hidden]
        }
        if (lastOnly) {
            x = x.get(new NDIndex(":, -1:, :")); // [B, 1, hidden]
        }
        return logits(ps, norm.forward(ps, x)); // [B, T', vocab]
    }

    /**
     * Runs one continuous-batching step: new tokens of several sequences, packed.
     *
     * @param ps the parameter store
     * @param tokens packed token ids [N], sequence after sequence
     * @param seqIds the sequences, each already added to the store
     * @param counts tokens per sequence (sum N)
     * @param store the KV store
     * @return logits of each sequence's last token [sequences, vocab] in fp32
     */
    public NDArray forwardPacked(ParameterStore ps, NDArray tokens, long[] seqIds, int[] counts,
            SequenceKvStore store) {
        long[] starts = store.reserve(seqIds, counts);
        int n = 0;
        for (int c : counts) {
            n += c;
        }
        if (tokens.getShape().size() != n) {
            throw new IllegalArgumentException("tokens hold " + tokens.getShape().size() + " ids, counts sum to " + n);
        }
        long[] positions = new long[n]; // [N]
        long[] lastRows = new long[counts.length];
        int row = 0;
        for (int i = 0; i < counts.length; i++) {
            for (int j = 0; j < counts[i]; j++) {
                positions[row++] = starts[i] + j;
            }
            lastRows[i] = row - 1;
        }
        NDArray x = embed(ps, tokens.reshape(n)); // [N, hidden]
        for (int i = 0; i < layers.size(); i++) {
            x = layers.get(i).forwardPacked(ps, x, positions, i, seqIds, counts, store); // [N, hidden]
        }
        NDArray last = x.get(x.getManager().create(lastRows)); // [S, hidden]
        return logits(ps, norm.forward(ps, last)); // [S, vocab]
    }

    private NDArray embed(ParameterStore ps, NDArray tokens) {
        NDArray table = ps.getValue(embedTokens, tokens.getDevice(), false); // [vocab, hidden]
        NDArray ids = tokens.getDataType() == DataType.INT64 ? tokens : tokens.toType(DataType.INT64, false);
        return table.get(ids); // [..., hidden]
    }

    private NDArray logits(ParameterStore ps, NDArray x) {
        NDArray out;
        if (lmHead == null) {
            NDArray table = ps.getValue(embedTokens, x.getDevice(), false); // [vocab, hidden]
            out = x.matMul(table.transpose());
        } else {
            out = lmHead.forward(ps, new NDList(x), false).head();
        }
        return out.getDataType() == DataType.FLOAT32 ? out : out.toType(DataType.FLOAT32, false);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        KvCache[] caches = params != null && params.contains(KV_CACHES_PARAM)
                ? (KvCache[]) params.get(KV_CACHES_PARAM) : null;
        return new NDList(forward(ps, inputs.singletonOrThrow(), caches, false));
    }

    /** {@inheritDoc} */
    @Override
    protected void prepare(Shape[] inputShapes) {
        embedTokens.setShape(new Shape(config.getVocabSize(), config.getHiddenSize()));
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape hidden = new Shape(1, 1, config.getHiddenSize());
        for (LlamaDecoderLayer l : layers) {
            l.initialize(manager, dataType, hidden);
        }
        norm.initialize(manager, dataType, hidden);
        if (lmHead != null) {
            lmHead.initialize(manager, dataType, new Shape(1, config.getHiddenSize()));
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape t = inputShapes[0];
        return new Shape[] {new Shape(t.get(0), t.get(1), config.getVocabSize())};
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LlamaModel(" + config + ", " + options + ")";
    }
}
