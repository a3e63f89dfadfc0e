package org.flashdjl.examples.llama;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
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
import org.flashdjl.examples.safetensors.HalfFloats;
import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.parallel.ContextParallelAttention;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * A LLaMA-family causal LM (Llama, Mistral, Qwen2, Gemma 2) as a DJL {@code Block}, one data flow in the manner of
 * llama3.java:
 *
 * <pre>
 * x      = embed_tokens[tokens] (* sqrt(hidden) for Gemma 2)            // [B, T, hidden]
 * for each layer (its own window, RoPE, scale and softcap in its attention spec):
 *   x    = x + outNorm?(o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(..)), v_proj(..))))
 *   x    = x + outNorm?(down_proj(act(gate_proj(norm(x))) * up_proj(norm(x))))
 * logits = softcap?(lm_head(norm(x)))                                  // [B, T, vocab] fp32
 * </pre>
 *
 * (lm_head = embed_tokens when tied; the optional output norms and the softcap are Gemma 2's.)
 *
 * <p>Children carry Hugging Face's names ({@code embed_tokens}, {@code layers_i}, {@code norm}, {@code lm_head});
 * {@link #expectedShapes(LlamaConfig)} lists every checkpoint tensor ({@code model.layers.0.mlp.up_proj.weight},
 * ...) with its shape, and {@link #checkpointParameters()} says which parameter holds each (q/k/v and gate/up
 * are packed into one projection each).
 */
public final class LlamaModel extends AbstractBlock {

    /** The forward parameter carrying a {@code KvCache[]} (one per layer) through the {@code Block} interface. */
    public static final String KV_CACHES_PARAM = "kv_caches";

    private static final byte VERSION = 2;

    private final LlamaConfig config;
    private final AttentionOptions options;
    private final Parameter embedTokens; // [vocab, hidden]
    private final List<LlamaDecoderLayer> layers;
    private final RmsNorm norm;
    private final Linear lmHead; // weight [vocab, hidden]; null when tied

    /**
     * Builds the (uninitialised) model: each layer's attention gets its window (the options' window, else the
     * checkpoint's window of that layer), its RoPE, and the family's scale and softcap.
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
        Map<LlamaConfig.Rope, RotaryEmbedding> ropes = new HashMap<>(); // one table per distinct RoPE
        List<LlamaDecoderLayer> list = new ArrayList<>();
        for (int i = 0; i < config.getNumLayers(); i++) {
            int window = options.getSlidingWindow() == 0 ? config.getSlidingWindow(i) : options.getSlidingWindow();
            LlamaConfig.Rope r = config.getRope(i);
            RotaryEmbedding rope = ropes.computeIfAbsent(r, k -> new RotaryEmbedding(config.getHeadDim(),
                    k.getTheta(), k.getScaling()));
            DecoderAttentionBlock.Builder attn = DecoderAttentionBlock.builder().setHiddenSize(config.getHiddenSize())
                    .setNumHeads(config.getNumHeads()).optNumKvHeads(config.getNumKvHeads())
                    .optHeadDim(config.getHeadDim()).optRope(rope).optSlidingWindow(window > 0 ? window : -1)
                    .optSinkTokens(window > 0 ? options.getSinkTokens() : 0).optBackend(options.getBackend())
                    .optQkvBias(config.isQkvBias()).optOutputBias(config.isOutputBias())
                    .optSoftcap((float) config.getAttnLogitSoftcap());
            if (config.getQueryPreAttnScalar() > 0) {
                attn.optScale((float) Math.pow(config.getQueryPreAttnScalar(), -0.5));
            }
            list.add(addChildBlock("layers_" + i, new LlamaDecoderLayer(config, attn.build())));
        }
        this.layers = Collections.unmodifiableList(list);
        this.norm = addChildBlock("norm", new RmsNorm(config.getHiddenSize(), config.getRmsNormEps(),
                config.isGemmaStyle()));
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
     * A parameter and the checkpoint tensors it holds, stacked along axis 0 in order: one tensor for most, {@code
     * q_proj}, {@code k_proj}, {@code v_proj} for the packed {@code qkv_proj} and {@code gate_proj}, {@code
     * up_proj} for the packed {@code gate_up_proj} (weights and, where present, biases).
     *
     * @param parameter the parameter
     * @param tensors the checkpoint names of {@link #expectedShapes(LlamaConfig)}, in stacking order
     */
    public record CheckpointParameter(Parameter parameter, List<String> tensors) {}

    /**
     * Returns every parameter with the checkpoint (Hugging Face) tensors it is loaded from, covering each name of
     * {@link #expectedShapes(LlamaConfig)} exactly once.
     *
     * @return the parameters, in checkpoint order
     */
    public List<CheckpointParameter> checkpointParameters() {
        Map<Parameter, List<String>> byParam = new LinkedHashMap<>();
        for (String name : expectedShapes(config).keySet()) {
            byParam.computeIfAbsent(parameter(name), k -> new ArrayList<>()).add(name);
        }
        List<CheckpointParameter> out = new ArrayList<>();
        byParam.forEach((p, names) -> out.add(new CheckpointParameter(p, Collections.unmodifiableList(names))));
        return out;
    }

    // A checkpoint name to its parameter: model.embed_tokens.weight, model.norm.weight, lm_head.weight or
    // model.layers.<i>.<module path>.<weight|bias>.
    private Parameter parameter(String name) {
        switch (name) {
            case "model.embed_tokens.weight":
                return embedTokens;
            case "model.norm.weight":
                return norm.getWeight();
            case "lm_head.weight":
                return lmHead.getParameters().get("weight");
            default:
                break;
        }
        String rest = name.substring("model.layers.".length());
        LlamaDecoderLayer l = layers.get(Integer.parseInt(rest.substring(0, rest.indexOf('.'))));
        String module = rest.substring(rest.indexOf('.') + 1, rest.lastIndexOf('.'));
        String param = rest.substring(rest.lastIndexOf('.') + 1);
        AbstractBlock block;
        switch (module) {
            case "input_layernorm":
                return l.getInputLayernorm().getWeight();
            case "post_attention_layernorm":
                return config.isGemmaStyle() ? l.getAttentionOutputNorm().getWeight() : l.getMlpNorm().getWeight();
            case "pre_feedforward_layernorm":
                return l.getMlpNorm().getWeight();
            case "post_feedforward_layernorm":
                return l.getMlpOutputNorm().getWeight();
            case "self_attn.q_proj":
            case "self_attn.k_proj":
            case "self_attn.v_proj":
                block = l.getSelfAttn().getQkvProj();
                break;
            case "self_attn.o_proj":
                block = l.getSelfAttn().getOProj();
                break;
            case "mlp.gate_proj":
            case "mlp.up_proj":
                block = l.getMlp().getGateUpProj();
                break;
            case "mlp.down_proj":
                block = l.getMlp().getDownProj();
                break;
            default:
                throw new IllegalStateException("no parameter for " + name);
        }
        return block.getParameters().get(param);
    }

    /** @return the shape every checkpoint tensor of this model must have (see {@link #expectedShapes(LlamaConfig)}) */
    public Map<String, Shape> expectedShapes() {
        return expectedShapes(config);
    }

    /**
     * Returns every tensor a checkpoint of this architecture holds, with its shape, from the config alone (the
     * loader checks a checkpoint against it before any block or array exists).
     *
     * @param c the architecture
     * @return name to shape, in checkpoint order
     */
    public static Map<String, Shape> expectedShapes(LlamaConfig c) {
        long h = c.getHiddenSize();
        long q = (long) c.getNumHeads() * c.getHeadDim();
        long kv = (long) c.getNumKvHeads() * c.getHeadDim();
        long im = c.getIntermediateSize();
        Map<String, Shape> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", new Shape(c.getVocabSize(), h));
        for (int i = 0; i < c.getNumLayers(); i++) {
            String p = "model.layers." + i + ".";
            m.put(p + "input_layernorm.weight", new Shape(h));
            linear(m, p + "self_attn.q_proj", q, h, c.isQkvBias());
            linear(m, p + "self_attn.k_proj", kv, h, c.isQkvBias());
            linear(m, p + "self_attn.v_proj", kv, h, c.isQkvBias());
            linear(m, p + "self_attn.o_proj", h, q, c.isOutputBias());
            m.put(p + "post_attention_layernorm.weight", new Shape(h));
            if (c.isGemmaStyle()) {
                m.put(p + "pre_feedforward_layernorm.weight", new Shape(h));
                m.put(p + "post_feedforward_layernorm.weight", new Shape(h));
            }
            linear(m, p + "mlp.gate_proj", im, h, c.isMlpBias());
            linear(m, p + "mlp.up_proj", im, h, c.isMlpBias());
            linear(m, p + "mlp.down_proj", h, im, c.isMlpBias());
        }
        m.put("model.norm.weight", new Shape(h));
        if (!c.isTieWordEmbeddings()) {
            m.put("lm_head.weight", new Shape(c.getVocabSize(), h));
        }
        return m;
    }

    // weight [out, in] (+ bias [out])
    private static void linear(Map<String, Shape> m, String prefix, long out, long in, boolean bias) {
        m.put(prefix + ".weight", new Shape(out, in));
        if (bias) {
            m.put(prefix + ".bias", new Shape(out));
        }
    }

    /**
     * Returns a layer's sliding window.
     *
     * @param layer the layer index
     * @return keys each query sees (itself included), or -1 when the layer attends to everything before
     */
    public int getSlidingWindow(int layer) {
        return layers.get(layer).getSelfAttn().getSlidingWindow();
    }

    /** @return the compute dtype (the embedding's; float32 or float16) */
    public DataType getDataType() {
        NDArray table = embedTokens.getArray();
        return table.getDataType();
    }

    /** @return bytes of keys plus values one token takes over all layers in the compute dtype */
    public long kvBytesPerToken() {
        return 2L * layers.size() * config.getNumKvHeads() * config.getHeadDim() * getDataType().getNumOfBytes();
    }

    /**
     * Returns whether this model's options ask for fixed-size streaming caches (a sliding window and {@link
     * AttentionOptions#isStreamingCache()}) on some layer: then {@link #newCaches} holds them, and a stream must
     * go through {@link #forward} rather than a sequence store.
     *
     * @return true when some layer has a window and the options want streaming caches
     */
    public boolean usesStreamingCaches() {
        if (!options.isStreamingCache()) {
            return false;
        }
        for (int i = 0; i < layers.size(); i++) {
            if (getSlidingWindow(i) > 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Creates one KV cache per layer for a single stream: for a layer with a sliding window and {@link
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
     * @throws IllegalStateException when in-cache RoPE positions are asked for but a layer has no streaming cache
     */
    public KvCache[] newCaches(NDManager manager, int batch, long maxLength) {
        KvCache[] caches = new KvCache[layers.size()];
        DataType type = getDataType();
        for (int i = 0; i < caches.length; i++) {
            int window = getSlidingWindow(i);
            boolean streaming = window > 0 && options.isStreamingCache();
            if (!streaming && options.getRopePositions() == StreamingKvCache.Positions.IN_CACHE) {
                throw new IllegalStateException("in-cache RoPE positions need a sliding window and the streaming"
                        + " cache on every layer; layer " + i + " has " + (window > 0 ? "a contiguous cache"
                                : "no window"));
            }
        }
        for (int i = 0; i < caches.length; i++) {
            int window = getSlidingWindow(i);
            caches[i] = window > 0 && options.isStreamingCache()
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
     * @throws IllegalArgumentException when the tokens or the parameter store's manager are not on the weights' device
     */
    public NDArray forward(ParameterStore ps, NDArray tokens, KvCache[] caches, boolean lastOnly) {
        if (tokens.getShape().dimension() != 2) {
            throw new IllegalArgumentException("tokens must be [batch, seq], got " + tokens.getShape());
        }
        if (caches != null && caches.length != layers.size()) {
            throw new IllegalArgumentException(caches.length + " caches for " + layers.size() + " layers");
        }
        checkDevice(ps, tokens);
        NDArray x = embed(ps, tokens); // [B, T, hidden]
        for (int i = 0; i < layers.size(); i++) {
            NDArray in = x;
            try (OpScope scope = new OpScope()) { // the layer's temporaries go as it ends (as in forwardPacked)
                x = scope.ret(layers.get(i).forward(ps, in, caches == null ? null : caches[i])); // [B, T, hidden]
            }
            if (x != in) {
                release(in); // the pass's own: the embedding or the previous layer's output
            }
        }
        if (lastOnly) {
            x = x.get(new NDIndex(":, -1:, :")); // [B, 1, hidden]
        }
        return logits(ps, norm.forward(ps, x)); // [B, T', vocab]
    }

    /**
     * Runs this rank's shard of a prompt whose sequence is split over a context-parallel group: the layers on the
     * shard's tokens, attention over the whole sequence with the other ranks. {@link ContextParallelPrefill} is the
     * entry point (sharding, checks, the last position's logits on every rank); this is its model half. Each layer
     * runs in its own scope: only the residual stream (and what {@code keys}/{@code values} receive) outlives it.
     *
     * @param ps the parameter store
     * @param tokens this rank's token ids [B, T_r]
     * @param positions int32 [B * T_r]: their global positions, row after row
     * @param attention the context-parallel attention over the group (bshd)
     * @param fromRow the first local row whose logits to compute
     * @param toRow past the last such row ({@code fromRow == toRow}: no logits)
     * @param keys when non-null, receives each layer's rotated keys [B, T_r, Hkv, D], layer after layer
     * @param values when non-null (with keys), receives each layer's values [B, T_r, Hkv, D]
     * @param afterLayer called with each layer's index when it is done, or null
     * @return logits [B, toRow - fromRow, vocab] fp32, or null when the range is empty
     */
    NDArray forwardContextParallel(ParameterStore ps, NDArray tokens, NDArray positions,
            ContextParallelAttention attention, long fromRow, long toRow, List<NDArray> keys, List<NDArray> values,
            IntConsumer afterLayer) {
        NDArray x; // [B, T_r, hidden]
        try (OpScope scope = new OpScope()) {
            x = scope.ret(embed(ps, tokens));
        }
        for (int i = 0; i < layers.size(); i++) {
            NDArray next;
            try (OpScope scope = new OpScope()) {
                NDList kv = keys == null ? null : new NDList(2);
                next = scope.ret(layers.get(i).forwardContextParallel(ps, x, positions, attention, kv));
                if (kv != null) {
                    keys.add(scope.ret(kv.get(0)));
                    values.add(scope.ret(kv.get(1)));
                }
            }
            x.close();
            x = next;
            if (afterLayer != null) {
                afterLayer.accept(i);
            }
        }
        try (OpScope scope = new OpScope()) {
            if (fromRow == toRow) {
                return null;
            }
            NDArray picked = x.get(new NDIndex(":, {}:{}, :", fromRow, toRow)); // [B, R, hidden]
            if (picked.getShape().get(0) > 1 && toRow - fromRow < x.getShape().get(1)) {
                picked = picked.duplicate(); // rows of several sequences: dense for the fused norm on CUDA
            }
            return scope.ret(logits(ps, norm.forward(ps, picked))); // [B, R, vocab]
        } finally {
            x.close();
        }
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
     * @throws IllegalArgumentException when the tokens or the parameter store's manager are not on the weights'
     *     device (nothing reserved in the store)
     */
    public NDArray forwardPacked(ParameterStore ps, NDArray tokens, long[] seqIds, int[] counts,
            SequenceKvStore store) {
        checkDevice(ps, tokens); // before the reservation: a refused call leaves the store as it was
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
        // the residual stream [N, hidden]: each layer's last addition is fused into the next layer's first norm.
        // A layer's temporaries (its projections, the MLP's [N, 2 x intermediate] activations) are freed as it ends
        // and the residual it consumed right after, so a pass of N tokens peaks at one layer's arrays, not every
        // layer's (run 133: 128 prompts of 512 tokens in one pass ran an 80 GB H100 out of memory before this).
        LlamaDecoderLayer.Residual r = new LlamaDecoderLayer.Residual(embed(ps, tokens.reshape(n)), null);
        for (int i = 0; i < layers.size(); i++) {
            LlamaDecoderLayer.Residual in = r;
            try (OpScope scope = new OpScope()) {
                r = layers.get(i).forwardPacked(ps, in, positions, i, seqIds, counts, store);
                scope.ret(r.stream());
                scope.ret(r.delta());
            }
            free(in, r);
        }
        NDArray rows = r.stream().getManager().create(lastRows); // [S]
        NDArray last = r.stream().get(rows).addi(r.delta().get(rows)); // [S, hidden]
        free(r, null);
        return logits(ps, norm.forward(ps, last)); // [S, vocab]
    }

    // Closes a residual the packed pass has consumed (its arrays are the pass's own: the embedding or a layer's
    // results); an array the next residual still holds stays.
    private static void free(LlamaDecoderLayer.Residual r, LlamaDecoderLayer.Residual next) {
        for (NDArray a : new NDArray[] {r.stream(), r.delta()}) {
            if (a != null && (next == null || (a != next.stream() && a != next.delta()))) {
                release(a);
            }
        }
    }

    // Closes an array a forward pass made and no longer needs, taking it out of the caller's step scope first (the
    // scope would close it again when the step ends).
    private static void release(NDArray a) {
        NDScope.unregister(a);
        a.close();
    }

    // Token ids and the parameter store's manager must be on the weights' device (DJL's ParameterStore would fail
    // with a bare NullPointerException, or the first op with a device error, after a store had reserved slots).
    private void checkDevice(ParameterStore ps, NDArray tokens) {
        Device weights = embedTokens.getArray().getDevice();
        if (!tokens.getDevice().equals(weights) || !ps.getManager().getDevice().equals(weights)) {
            throw new IllegalArgumentException("the token ids are on " + tokens.getDevice() + " and the parameter"
                    + " store's manager on " + ps.getManager().getDevice() + ", but the model's weights are on "
                    + weights + "; create both with a manager on " + weights);
        }
    }

    private NDArray embed(ParameterStore ps, NDArray tokens) {
        NDArray table = ps.getValue(embedTokens, tokens.getDevice(), false); // [vocab, hidden]
        NDArray ids = tokens.getDataType() == DataType.INT64 ? tokens : tokens.toType(DataType.INT64, false);
        NDArray x = table.get(ids); // [..., hidden]
        if (config.isGemmaStyle()) {
            // Gemma: x * sqrt(hidden), the normalizer rounded to the activation dtype first (as transformers)
            float normalizer = (float) Math.sqrt(config.getHiddenSize());
            if (x.getDataType() == DataType.FLOAT16) {
                normalizer = HalfFloats.f16ToFloat(HalfFloats.floatToF16(normalizer));
            }
            x = x.mul(normalizer);
        }
        return x;
    }

    private NDArray logits(ParameterStore ps, NDArray x) {
        NDArray out; // [..., vocab]
        if (lmHead == null) {
            NDArray table = ps.getValue(embedTokens, x.getDevice(), false); // [vocab, hidden]
            out = x.matMul(table.transpose());
        } else {
            out = lmHead.forward(ps, new NDList(x), false).head();
        }
        out = out.getDataType() == DataType.FLOAT32 ? out : out.toType(DataType.FLOAT32, false);
        float cap = (float) config.getFinalLogitSoftcap();
        return cap > 0 ? out.div(cap).tanh().mul(cap) : out; // Gemma 2: cap * tanh(logits / cap)
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
