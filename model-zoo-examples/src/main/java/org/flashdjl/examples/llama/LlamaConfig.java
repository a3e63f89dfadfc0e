package org.flashdjl.examples.llama;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.safetensors.CheckpointException;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The architecture of a LLaMA-family model, read from a Hugging Face {@code config.json} or built in code.
 *
 * <p>Families ({@code model_type}), each read as transformers' config class of that name reads it:
 * <ul>
 *   <li>{@code llama} (Llama 2, 3, 3.1, 3.2): {@code attention_bias} (q, k, v, o), {@code mlp_bias}, tied
 *       embeddings, RoPE scaling;
 *   <li>{@code mistral}: {@code sliding_window} on every layer (default 4096, {@code null} = off);
 *   <li>{@code qwen2} (Qwen 2, 2.5): biases on q, k, v; {@code use_sliding_window} with {@code max_window_layers}
 *       (layers {@code >= max_window_layers} slide) or an explicit {@code layer_types};
 *   <li>{@code gemma2}: GeGLU ({@code hidden_activation}), (1 + w) RMSNorm, norms after attention and MLP,
 *       embeddings scaled by {@code sqrt(hidden_size)}, {@code query_pre_attn_scalar}, attention and final logit
 *       softcaps, sliding-window layers by {@code layer_types} (default: even layers).
 * </ul>
 *
 * <p>RoPE settings in both generations of the format: transformers 4.x's top-level {@code rope_theta} and
 * {@code rope_scaling}, and 5.x's {@code rope_parameters} ({@code rope_theta}, {@code rope_type} and the type's
 * parameters), flat or nested by layer type ({@code {"full_attention": {...}, "sliding_attention": {...}}}).
 * Supported {@code rope_type}s: {@code default}, {@code linear}, {@code llama3}, {@code yarn}. A key that changes
 * the math with a value this model does not implement ({@code rope_type: dynamic}, {@code partial_rotary_factor},
 * {@code quantization_config}, an activation other than SiLU / tanh-GELU, ...) is an error naming the key; a key
 * the family's transformers config class does not read either is logged and ignored.
 */
public final class LlamaConfig {

    /** The {@code layer_types} entry of a layer that attends to everything before it. */
    public static final String FULL_ATTENTION = "full_attention";

    /** The {@code layer_types} entry of a layer with a sliding window. */
    public static final String SLIDING_ATTENTION = "sliding_attention";

    private static final Logger logger = LoggerFactory.getLogger(LlamaConfig.class);

    private static final int MAX_INT = Integer.MAX_VALUE;

    /** The largest config file read (16 MiB; real ones are a few KiB). */
    private static final long MAX_CONFIG_BYTES = 16L << 20;

    /** The supported model families, by Hugging Face {@code model_type}. */
    public enum Family {
        /** Llama 2 / 3 / 3.1 / 3.2. */
        LLAMA("llama", "LlamaForCausalLM", 2048, false, 1, 2),
        /** Mistral: sliding window on every layer. */
        MISTRAL("mistral", "MistralForCausalLM", 4096 * 32, false, 1, 2),
        /** Qwen 2 / 2.5: q, k, v biases; optional sliding window on the upper layers. */
        QWEN2("qwen2", "Qwen2ForCausalLM", 32768, false, -1, -1),
        /** Gemma 2: softcaps, alternating sliding-window layers, sandwich norms, GeGLU. */
        GEMMA2("gemma2", "Gemma2ForCausalLM", 8192, true, 2, 1);

        private final String modelType;
        private final String architecture;
        private final int defaultMaxPositions;
        private final boolean defaultTied;
        private final int defaultBos;
        private final int defaultEos;

        Family(String modelType, String architecture, int defaultMaxPositions, boolean defaultTied, int defaultBos,
                int defaultEos) {
            this.modelType = modelType;
            this.architecture = architecture;
            this.defaultMaxPositions = defaultMaxPositions;
            this.defaultTied = defaultTied;
            this.defaultBos = defaultBos;
            this.defaultEos = defaultEos;
        }

        /** @return Hugging Face's {@code model_type} */
        public String getModelType() {
            return modelType;
        }

        /** @return Hugging Face's causal-LM class name ({@code architectures}) */
        public String getArchitecture() {
            return architecture;
        }

        /**
         * Finds a family by {@code model_type}.
         *
         * @param modelType the model type
         * @return the family, or null
         */
        public static Family of(String modelType) {
            for (Family f : values()) {
                if (f.modelType.equals(modelType)) {
                    return f;
                }
            }
            return null;
        }

        /** @return the supported model types, comma separated */
        public static String supported() {
            return Arrays.stream(values()).map(Family::getModelType).collect(Collectors.joining(", "));
        }
    }

    /** The RoPE settings of a layer: base and scaling. */
    public static final class Rope {
        private final double theta;
        private final RopeScaling scaling;

        /**
         * Creates the settings.
         *
         * @param theta the base ({@code rope_theta}), finite and {@code > 0}
         * @param scaling the scaling
         */
        public Rope(double theta, RopeScaling scaling) {
            if (!(theta > 0) || Double.isInfinite(theta)) {
                throw new IllegalArgumentException("rope_theta must be finite and > 0, got " + theta);
            }
            this.theta = theta;
            this.scaling = Objects.requireNonNull(scaling, "scaling");
        }

        /** @return the base */
        public double getTheta() {
            return theta;
        }

        /** @return the scaling */
        public RopeScaling getScaling() {
            return scaling;
        }

        /** {@inheritDoc} */
        @Override
        public boolean equals(Object o) {
            return o instanceof Rope && ((Rope) o).theta == theta && ((Rope) o).scaling.toString()
                    .equals(scaling.toString());
        }

        /** {@inheritDoc} */
        @Override
        public int hashCode() {
            return Objects.hash(theta, scaling.toString());
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "theta=" + theta + ", scaling=" + scaling;
        }
    }

    /** Which layers slide when the model has a window. */
    private enum WindowRule {
        /** No layer. */
        NONE,
        /** Every layer (Mistral). */
        ALL,
        /** Layers {@code >= firstSlidingLayer} (Qwen2's {@code max_window_layers}). */
        FROM_LAYER,
        /** Even layers (Gemma 2's default {@code layer_types}). */
        EVEN_LAYERS,
        /** As {@code layer_types} lists. */
        EXPLICIT
    }

    private final Family family;
    private final int hiddenSize;
    private final int intermediateSize;
    private final int numLayers;
    private final int numHeads;
    private final int numKvHeads;
    private final int headDim;
    private final int vocabSize;
    private final double rmsNormEps;
    private final Rope rope;
    private final Map<String, Rope> ropeByLayerType;
    private final boolean tieWordEmbeddings;
    private final boolean qkvBias;
    private final boolean outputBias;
    private final boolean mlpBias;
    private final GatedMlp.Activation activation;
    private final int maxPositions;
    private final int slidingWindow;
    private final WindowRule windowRule;
    private final int firstSlidingLayer;
    private final List<String> layerTypes;
    private final double queryPreAttnScalar;
    private final double attnLogitSoftcap;
    private final double finalLogitSoftcap;
    private final int bosTokenId;
    private final List<Integer> eosTokenIds;

    private LlamaConfig(Builder b) {
        this.family = b.family;
        this.hiddenSize = b.hiddenSize;
        this.intermediateSize = b.intermediateSize;
        this.numLayers = b.numLayers;
        this.numHeads = b.numHeads;
        this.numKvHeads = b.numKvHeads < 0 ? b.numHeads : b.numKvHeads;
        this.headDim = b.headDim < 0 ? b.hiddenSize / b.numHeads : b.headDim;
        this.vocabSize = b.vocabSize;
        this.rmsNormEps = b.rmsNormEps;
        this.rope = b.rope;
        this.ropeByLayerType = Collections.unmodifiableMap(new LinkedHashMap<>(b.ropeByLayerType));
        this.tieWordEmbeddings = b.tieWordEmbeddings;
        this.qkvBias = b.family == Family.QWEN2 || b.attentionBias;
        this.outputBias = b.family != Family.QWEN2 && b.attentionBias;
        this.mlpBias = b.mlpBias;
        this.activation = b.activation;
        this.maxPositions = b.maxPositions;
        this.slidingWindow = b.slidingWindow;
        this.windowRule = b.windowRule;
        this.firstSlidingLayer = b.firstSlidingLayer;
        this.layerTypes = b.layerTypes == null ? null : Collections.unmodifiableList(new ArrayList<>(b.layerTypes));
        this.queryPreAttnScalar = b.queryPreAttnScalar;
        this.attnLogitSoftcap = b.attnLogitSoftcap;
        this.finalLogitSoftcap = b.finalLogitSoftcap;
        this.bosTokenId = b.bosTokenId;
        this.eosTokenIds = Collections.unmodifiableList(new ArrayList<>(b.eosTokenIds));
    }

    /**
     * Returns a builder for a config made in code (family {@code llama} unless set).
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Reads {@code config.json}.
     *
     * @param file the file
     * @return the config
     * @throws CheckpointException naming the file and key when a key is missing, mistyped, out of range or asks
     *     for math this model does not implement
     * @throws IOException if the file cannot be read
     */
    public static LlamaConfig read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, null, Files.isDirectory(file) ? "is a directory, not a config file"
                    : "config file not found");
        }
        long size = Files.size(file);
        if (size > MAX_CONFIG_BYTES) {
            throw new CheckpointException(file, null, "is " + size + " bytes; a config.json is a few KiB (at most "
                    + MAX_CONFIG_BYTES + " read)");
        }
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
            if (!e.isJsonObject()) {
                throw new CheckpointException(file, null, "not a JSON object");
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException | StackOverflowError e) {
            throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage(), e);
        }
        ConfigReader r = new ConfigReader(file, o, "");
        String modelType = r.requiredString("model_type");
        Family family = Family.of(modelType);
        if (family == null) {
            throw r.error("model_type", "'" + modelType + "' is not supported; supported: " + Family.supported());
        }
        Builder b = builder().optFamily(family);
        b.hiddenSize = r.requiredInteger("hidden_size", 1, MAX_INT);
        b.intermediateSize = r.requiredInteger("intermediate_size", 1, MAX_INT);
        b.numLayers = r.requiredInteger("num_hidden_layers", 1, MAX_INT);
        b.numHeads = r.requiredInteger("num_attention_heads", 1, MAX_INT);
        b.vocabSize = r.requiredInteger("vocab_size", 1, MAX_INT);
        b.numKvHeads = r.integer("num_key_value_heads", -1, 1, MAX_INT);
        b.headDim = r.integer("head_dim", -1, 1, MAX_INT);
        b.rmsNormEps = r.positive("rms_norm_eps", 1e-6);
        b.maxPositions = r.integer("max_position_embeddings", family.defaultMaxPositions, 1, MAX_INT);
        b.tieWordEmbeddings = r.bool("tie_word_embeddings", family.defaultTied);
        readSpecialTokens(r, family, b);
        readActivation(r, family, b);
        switch (family) {
            case LLAMA:
                b.attentionBias = r.bool("attention_bias", false);
                b.mlpBias = r.bool("mlp_bias", false);
                break;
            case MISTRAL:
                b.slidingWindow = window(r, 4096);
                b.windowRule = b.slidingWindow > 0 ? WindowRule.ALL : WindowRule.NONE;
                break;
            case QWEN2:
                int w = window(r, 4096);
                boolean use = r.bool("use_sliding_window", false);
                int maxWindowLayers = r.integer("max_window_layers", 28, 0, MAX_INT);
                b.slidingWindow = use ? w : -1;
                b.windowRule = b.slidingWindow > 0 ? WindowRule.FROM_LAYER : WindowRule.NONE;
                b.firstSlidingLayer = maxWindowLayers;
                readLayerTypes(r, b);
                break;
            case GEMMA2:
                b.attentionBias = r.bool("attention_bias", false);
                b.slidingWindow = window(r, 4096);
                b.windowRule = WindowRule.EVEN_LAYERS;
                readLayerTypes(r, b);
                b.queryPreAttnScalar = r.positive("query_pre_attn_scalar", 256);
                b.attnLogitSoftcap = r.present("attn_logit_softcapping") && !r.has("attn_logit_softcapping") ? 0
                        : r.positive("attn_logit_softcapping", 50.0);
                b.finalLogitSoftcap = r.present("final_logit_softcapping") && !r.has("final_logit_softcapping") ? 0
                        : r.positive("final_logit_softcapping", 30.0);
                if (r.bool("use_bidirectional_attention", false)) {
                    throw r.error("use_bidirectional_attention", "true (non-causal attention) is not supported");
                }
                break;
            default:
                throw new IllegalStateException(family.toString());
        }
        readRope(r, family, b);
        rejectUnsupported(r);
        Set<String> ignored = new TreeSet<>(r.unread());
        ignored.removeAll(HARMLESS_KEYS);
        if (!ignored.isEmpty()) {
            logger.info("{}: keys not read by transformers' {} config either, ignored: {}", file, family.modelType,
                    ignored);
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, null, e.getMessage(), e);
        }
    }

    /** Keys every transformers config may carry that change nothing at inference (not logged as ignored). */
    private static final Set<String> HARMLESS_KEYS = Set.of("architectures", "transformers_version", "torch_dtype",
            "dtype", "_name_or_path", "initializer_range", "use_cache", "attention_dropout", "pad_token_id",
            "pretraining_tp", "output_attentions", "output_hidden_states", "return_dict", "use_return_dict",
            "torchscript", "tokenizer_class", "cache_implementation", "is_decoder", "id2label", "label2id",
            "problem_type", "finetuning_task", "prefix", "task_specific_params", "chunk_size_feed_forward",
            "tie_encoder_decoder", "sep_token_id", "decoder_start_token_id", "rope_scaling", "rope_parameters",
            "rope_theta", "auto_map");

    // Keys of the base config that change the computation when set; this model implements none of them.
    private static void rejectUnsupported(ConfigReader r) throws CheckpointException {
        if (r.has("quantization_config")) {
            throw r.error("quantization_config", "quantized checkpoints are not supported (weights must be F32, F16,"
                    + " BF16 or F64)");
        }
        if (r.bool("is_encoder_decoder", false)) {
            throw r.error("is_encoder_decoder", "true is not supported (decoder-only models)");
        }
        if (r.bool("add_cross_attention", false)) {
            throw r.error("add_cross_attention", "true is not supported (decoder-only models)");
        }
        if (r.has("pruned_heads")) {
            JsonElement p = r.raw("pruned_heads");
            if (!p.isJsonObject() || p.getAsJsonObject().size() > 0) {
                throw r.error("pruned_heads", "pruned attention heads are not supported, got " + p);
            }
        }
    }

    private static int window(ConfigReader r, int def) throws CheckpointException {
        if (r.present("sliding_window") && !r.has("sliding_window")) {
            return -1; // explicit null: no window
        }
        return r.integer("sliding_window", def, 1, MAX_INT);
    }

    private static void readLayerTypes(ConfigReader r, Builder b) throws CheckpointException {
        if (!r.has("layer_types")) {
            return;
        }
        JsonElement e = r.raw("layer_types");
        if (!e.isJsonArray()) {
            throw r.error("layer_types", "must be a list of strings, got " + e);
        }
        JsonArray a = e.getAsJsonArray();
        if (a.size() != b.numLayers) {
            throw r.error("layer_types", "has " + a.size() + " entries, but num_hidden_layers is " + b.numLayers);
        }
        List<String> types = new ArrayList<>();
        for (int i = 0; i < a.size(); i++) {
            JsonElement t = a.get(i);
            String s = t.isJsonPrimitive() && t.getAsJsonPrimitive().isString() ? t.getAsString() : null;
            if (!FULL_ATTENTION.equals(s) && !SLIDING_ATTENTION.equals(s)) {
                throw CheckpointException.forKey(r.file(), "layer_types[" + i + "]", "is " + t + "; supported: "
                        + FULL_ATTENTION + ", " + SLIDING_ATTENTION);
            }
            types.add(s);
        }
        b.layerTypes = types;
        b.windowRule = WindowRule.EXPLICIT;
    }

    private static void readSpecialTokens(ConfigReader r, Family family, Builder b) throws CheckpointException {
        b.bosTokenId = r.present("bos_token_id") ? r.integer("bos_token_id", -1, 0, MAX_INT) : family.defaultBos;
        b.eosTokenIds = new ArrayList<>();
        if (!r.present("eos_token_id")) {
            if (family.defaultEos >= 0) {
                b.eosTokenIds.add(family.defaultEos);
            }
        } else if (r.has("eos_token_id")) {
            JsonElement eos = r.raw("eos_token_id");
            if (eos.isJsonArray()) {
                JsonArray a = eos.getAsJsonArray();
                for (int i = 0; i < a.size(); i++) {
                    b.eosTokenIds.add(r.toInt("eos_token_id", a.get(i), 0, MAX_INT));
                }
            } else {
                b.eosTokenIds.add(r.toInt("eos_token_id", eos, 0, MAX_INT));
            }
        }
    }

    private static void readActivation(ConfigReader r, Family family, Builder b) throws CheckpointException {
        String key = family == Family.GEMMA2 ? "hidden_activation" : "hidden_act";
        String name = r.string(key, family == Family.GEMMA2 ? "gelu_pytorch_tanh" : "silu");
        GatedMlp.Activation act = GatedMlp.Activation.of(name);
        if (act == null) {
            throw r.error(key, "'" + name + "' is not supported; supported: " + GatedMlp.Activation.supported());
        }
        b.activation = act;
    }

    // RoPE: 4.x top-level rope_theta + rope_scaling, or 5.x rope_parameters (flat or nested by layer type).
    private static void readRope(ConfigReader r, Family family, Builder b) throws CheckpointException {
        double topTheta = r.has("rope_theta") ? r.positive("rope_theta", 0) : 10000;
        double partial = r.finite("partial_rotary_factor", 1.0);
        if (partial != 1.0) {
            throw r.error("partial_rotary_factor", "rotary embedding of part of the head (" + partial
                    + ") is not supported; only 1.0");
        }
        Integer topOriginal = r.has("original_max_position_embeddings")
                ? r.integer("original_max_position_embeddings", 0, 1, MAX_INT) : null;
        ConfigReader scaling = r.object("rope_scaling");
        ConfigReader params = r.object("rope_parameters");
        if (scaling != null && params != null && !r.raw("rope_scaling").equals(r.raw("rope_parameters"))) {
            throw r.error("rope_scaling", "both rope_scaling (transformers 4.x) and rope_parameters (5.x) are set,"
                    + " and they differ; keep one");
        }
        ConfigReader dict = scaling != null ? scaling : params;
        b.ropeByLayerType = new LinkedHashMap<>();
        if (dict == null) {
            b.rope = new Rope(topTheta, RopeScaling.none());
            return;
        }
        boolean layered = family == Family.QWEN2 || family == Family.GEMMA2;
        if (layered && Set.of(FULL_ATTENTION, SLIDING_ATTENTION).containsAll(dict.keys())) {
            for (String type : dict.keys()) {
                ConfigReader sub = dict.object(type);
                if (sub == null) {
                    throw dict.error(type, "must be an object of RoPE parameters");
                }
                b.ropeByLayerType.put(type, rope(sub, topTheta, topOriginal, b.maxPositions));
            }
            b.rope = b.ropeByLayerType.getOrDefault(FULL_ATTENTION, b.ropeByLayerType.values().iterator().next());
            return;
        }
        b.rope = rope(dict, topTheta, topOriginal, b.maxPositions);
    }

    private static Rope rope(ConfigReader d, double topTheta, Integer topOriginal, int maxPositions)
            throws CheckpointException {
        double theta = d.has("rope_theta") ? d.positive("rope_theta", 0) : topTheta;
        String type = d.has("rope_type") ? d.string("rope_type", null) : d.string("type", "default");
        double partial = d.finite("partial_rotary_factor", 1.0);
        if (partial != 1.0) {
            throw d.error("partial_rotary_factor", "rotary embedding of part of the head (" + partial
                    + ") is not supported; only 1.0");
        }
        String typeKey = d.has("rope_type") ? "rope_type" : "type";
        RopeScaling scaling;
        try {
            switch (type) {
                case "default":
                    scaling = RopeScaling.none();
                    break;
                case "linear":
                    scaling = RopeScaling.linear(d.requiredPositive("factor"));
                    break;
                case "llama3":
                    scaling = RopeScaling.llama3(d.requiredPositive("factor"), d.requiredPositive("low_freq_factor"),
                            d.requiredPositive("high_freq_factor"), original(d, topOriginal, maxPositions));
                    break;
                case "yarn":
                    scaling = yarn(d, topOriginal, maxPositions);
                    break;
                default:
                    throw d.error(typeKey, "'" + type + "' is not supported; supported: default, linear, llama3, yarn"
                            + ("dynamic".equals(type) ? " (dynamic NTK changes the frequencies with the running"
                                    + " sequence length and does not reproduce across cached decode steps)" : ""));
            }
        } catch (IllegalArgumentException e) {
            throw d.error(typeKey, e.getMessage());
        }
        Set<String> unread = d.unread();
        if (!unread.isEmpty()) {
            logger.info("{}: {} keys not read for rope_type '{}', ignored as transformers does: {}", d.file(),
                    d.path("").replaceAll("\\.$", ""), type, unread);
        }
        return new Rope(theta, scaling);
    }

    // transformers 5.x: the top-level attribute first (Phi-3 style), then the dict's, then max_position_embeddings.
    private static long original(ConfigReader d, Integer topOriginal, int maxPositions) throws CheckpointException {
        if (topOriginal != null) {
            d.raw("original_max_position_embeddings");
            return topOriginal;
        }
        return d.integer("original_max_position_embeddings", maxPositions, 1, MAX_INT);
    }

    private static RopeScaling yarn(ConfigReader d, Integer topOriginal, int maxPositions)
            throws CheckpointException {
        double factor = d.requiredPositive("factor");
        long original = original(d, topOriginal, maxPositions);
        double implicit = (double) maxPositions / original;
        if (implicit != factor && implicit != 1) {
            // as transformers 5.x: the explicit factor is used, with a warning (4.5x used the ratio instead)
            logger.warn("{}: yarn factor {} differs from max_position_embeddings / original_max_position_embeddings"
                    + " = {}; using the explicit factor, as transformers 5.x does", d.file(), factor, implicit);
        }
        double attention = d.has("attention_factor") ? d.positive("attention_factor", 1)
                : RopeScaling.yarnAttentionFactor(factor, d.finite("mscale", 0), d.finite("mscale_all_dim", 0));
        double betaFast = d.finite("beta_fast", 0);
        double betaSlow = d.finite("beta_slow", 0);
        return RopeScaling.yarn(factor, original, betaFast == 0 ? 32 : betaFast, betaSlow == 0 ? 1 : betaSlow,
                attention, d.bool("truncate", true));
    }

    /**
     * Writes this config as a transformers 5.x {@code config.json} ({@code rope_parameters}; {@code layer_types}
     * when some layers slide).
     *
     * @return the JSON object
     */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add(family.architecture);
        o.add("architectures", arch);
        o.addProperty("model_type", family.modelType);
        o.addProperty("hidden_size", hiddenSize);
        o.addProperty("intermediate_size", intermediateSize);
        o.addProperty("num_hidden_layers", numLayers);
        o.addProperty("num_attention_heads", numHeads);
        o.addProperty("num_key_value_heads", numKvHeads);
        o.addProperty("head_dim", headDim);
        o.addProperty("vocab_size", vocabSize);
        o.addProperty("rms_norm_eps", rmsNormEps);
        o.addProperty(family == Family.GEMMA2 ? "hidden_activation" : "hidden_act", activation.getHfName());
        if (ropeByLayerType.isEmpty()) {
            o.add("rope_parameters", ropeJson(rope));
        } else {
            JsonObject nested = new JsonObject();
            ropeByLayerType.forEach((k, v) -> nested.add(k, ropeJson(v)));
            o.add("rope_parameters", nested);
        }
        o.addProperty("tie_word_embeddings", tieWordEmbeddings);
        if (family == Family.LLAMA || family == Family.GEMMA2) {
            o.addProperty("attention_bias", outputBias);
        }
        if (family == Family.LLAMA) {
            o.addProperty("mlp_bias", mlpBias);
        }
        o.addProperty("max_position_embeddings", maxPositions);
        if (family != Family.LLAMA) {
            if (slidingWindow > 0) {
                o.addProperty("sliding_window", slidingWindow);
            } else {
                o.add("sliding_window", com.google.gson.JsonNull.INSTANCE);
            }
        }
        if (family == Family.QWEN2) {
            o.addProperty("use_sliding_window", slidingWindow > 0);
            o.addProperty("max_window_layers", firstSlidingLayer);
        }
        if (family == Family.QWEN2 || family == Family.GEMMA2) {
            JsonArray types = new JsonArray();
            for (int i = 0; i < numLayers; i++) {
                types.add(getLayerType(i));
            }
            o.add("layer_types", types);
        }
        if (family == Family.GEMMA2) {
            o.addProperty("query_pre_attn_scalar", queryPreAttnScalar);
            addCap(o, "attn_logit_softcapping", attnLogitSoftcap);
            addCap(o, "final_logit_softcapping", finalLogitSoftcap);
        }
        if (bosTokenId >= 0) {
            o.addProperty("bos_token_id", bosTokenId);
        } else {
            o.add("bos_token_id", com.google.gson.JsonNull.INSTANCE);
        }
        if (eosTokenIds.size() == 1) {
            o.addProperty("eos_token_id", eosTokenIds.get(0));
        } else if (eosTokenIds.isEmpty()) {
            o.add("eos_token_id", com.google.gson.JsonNull.INSTANCE);
        } else {
            JsonArray a = new JsonArray();
            eosTokenIds.forEach(a::add);
            o.add("eos_token_id", a);
        }
        o.addProperty("dtype", "float32");
        return o;
    }

    private static void addCap(JsonObject o, String key, double cap) {
        if (cap > 0) {
            o.addProperty(key, cap);
        } else {
            o.add(key, com.google.gson.JsonNull.INSTANCE);
        }
    }

    private static JsonObject ropeJson(Rope rope) {
        RopeScaling s = rope.getScaling();
        JsonObject rs = new JsonObject();
        rs.addProperty("rope_theta", rope.getTheta());
        switch (s.getType()) {
            case LINEAR:
                rs.addProperty("rope_type", "linear");
                rs.addProperty("factor", s.getFactor());
                break;
            case LLAMA3:
                rs.addProperty("rope_type", "llama3");
                rs.addProperty("factor", s.getFactor());
                rs.addProperty("low_freq_factor", s.getLowFreqFactor());
                rs.addProperty("high_freq_factor", s.getHighFreqFactor());
                rs.addProperty("original_max_position_embeddings", s.getOriginalMaxPositions());
                break;
            case YARN:
                rs.addProperty("rope_type", "yarn");
                rs.addProperty("factor", s.getFactor());
                rs.addProperty("original_max_position_embeddings", s.getOriginalMaxPositions());
                rs.addProperty("beta_fast", s.getBetaFast());
                rs.addProperty("beta_slow", s.getBetaSlow());
                rs.addProperty("attention_factor", s.getAttentionScaling());
                rs.addProperty("truncate", s.isTruncate());
                break;
            default:
                rs.addProperty("rope_type", "default");
                break;
        }
        return rs;
    }

    /** @return the model family */
    public Family getFamily() {
        return family;
    }

    /** @return Hugging Face's {@code model_type} */
    public String getModelType() {
        return family.modelType;
    }

    /** @return the model width */
    public int getHiddenSize() {
        return hiddenSize;
    }

    /** @return the MLP width */
    public int getIntermediateSize() {
        return intermediateSize;
    }

    /** @return the number of decoder layers */
    public int getNumLayers() {
        return numLayers;
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

    /** @return the vocabulary size */
    public int getVocabSize() {
        return vocabSize;
    }

    /** @return the RMSNorm epsilon */
    public double getRmsNormEps() {
        return rmsNormEps;
    }

    /** @return the RoPE base of full-attention layers (of every layer unless RoPE is set per layer type) */
    public double getRopeTheta() {
        return rope.getTheta();
    }

    /** @return the RoPE scaling of full-attention layers (of every layer unless RoPE is set per layer type) */
    public RopeScaling getRopeScaling() {
        return rope.getScaling();
    }

    /**
     * Returns the RoPE settings of a layer.
     *
     * @param layer the layer index
     * @return its base and scaling
     */
    public Rope getRope(int layer) {
        return ropeByLayerType.isEmpty() ? rope : ropeByLayerType.getOrDefault(getLayerType(layer), rope);
    }

    /** @return whether the LM head reuses the embedding matrix */
    public boolean isTieWordEmbeddings() {
        return tieWordEmbeddings;
    }

    /** @return whether q, k, v projections have biases (Qwen2, or {@code attention_bias}) */
    public boolean isQkvBias() {
        return qkvBias;
    }

    /** @return whether the output projection has a bias ({@code attention_bias} of Llama and Gemma 2) */
    public boolean isOutputBias() {
        return outputBias;
    }

    /** @return whether the MLP projections have biases (Llama's {@code mlp_bias}) */
    public boolean isMlpBias() {
        return mlpBias;
    }

    /** @return the MLP's gate activation */
    public GatedMlp.Activation getActivation() {
        return activation;
    }

    /** @return the trained context length ({@code max_position_embeddings}) */
    public int getMaxPositions() {
        return maxPositions;
    }

    /** @return the model's sliding window (keys a query sees, itself included) when some layer slides, else -1 */
    public int getSlidingWindow() {
        return slidingWindow;
    }

    /**
     * Returns a layer's type.
     *
     * @param layer the layer index
     * @return {@link #SLIDING_ATTENTION} or {@link #FULL_ATTENTION}
     */
    public String getLayerType(int layer) {
        if (layer < 0 || layer >= numLayers) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + numLayers);
        }
        boolean sliding;
        switch (windowRule) {
            case ALL:
                sliding = true;
                break;
            case FROM_LAYER:
                sliding = layer >= firstSlidingLayer;
                break;
            case EVEN_LAYERS:
                sliding = layer % 2 == 0;
                break;
            case EXPLICIT:
                sliding = SLIDING_ATTENTION.equals(layerTypes.get(layer));
                break;
            default:
                sliding = false;
                break;
        }
        return sliding && slidingWindow > 0 ? SLIDING_ATTENTION : FULL_ATTENTION;
    }

    /**
     * Returns a layer's sliding window.
     *
     * @param layer the layer index
     * @return keys a query sees (itself included), or -1 when the layer attends to everything before
     */
    public int getSlidingWindow(int layer) {
        return SLIDING_ATTENTION.equals(getLayerType(layer)) ? slidingWindow : -1;
    }

    /** @return Gemma 2's {@code query_pre_attn_scalar} (softmax scale {@code scalar^-0.5}), or 0 for 1/sqrt(D) */
    public double getQueryPreAttnScalar() {
        return queryPreAttnScalar;
    }

    /** @return the attention logit softcap, 0 when off */
    public double getAttnLogitSoftcap() {
        return attnLogitSoftcap;
    }

    /** @return the final logit softcap, 0 when off */
    public double getFinalLogitSoftcap() {
        return finalLogitSoftcap;
    }

    /** @return whether norms use {@code (1 + w)} in fp32 and sandwich attention and MLP (Gemma 2) */
    public boolean isGemmaStyle() {
        return family == Family.GEMMA2;
    }

    /** @return the BOS id, or -1 */
    public int getBosTokenId() {
        return bosTokenId;
    }

    /** @return the EOS ids (possibly empty) */
    public List<Integer> getEosTokenIds() {
        return eosTokenIds;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%s(hidden=%d, layers=%d, heads=%d,"
                + " kv_heads=%d, head_dim=%d, mlp=%d, vocab=%d, rope_theta=%s, rope_scaling=%s, tied=%s",
                family.modelType, hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize, vocabSize,
                rope.getTheta(), rope.getScaling(), tieWordEmbeddings));
        if (!ropeByLayerType.isEmpty()) {
            sb.append(", rope by layer type=").append(ropeByLayerType);
        }
        if (slidingWindow > 0) {
            int sliding = 0;
            if (numLayers <= 100_000) {
                for (int i = 0; i < numLayers; i++) {
                    sliding += getSlidingWindow(i) > 0 ? 1 : 0;
                }
            }
            sb.append(", sliding_window=").append(slidingWindow).append(" on ").append(sliding).append(" layers");
        }
        if (family == Family.GEMMA2) {
            sb.append(String.format(Locale.ROOT, ", query_pre_attn_scalar=%s, attn_softcap=%s, final_softcap=%s",
                    queryPreAttnScalar, attnLogitSoftcap, finalLogitSoftcap));
        }
        return sb.append(')').toString();
    }

    /** Builds a {@link LlamaConfig}. */
    public static final class Builder {
        private Family family = Family.LLAMA;
        private int hiddenSize;
        private int intermediateSize;
        private int numLayers;
        private int numHeads;
        private int numKvHeads = -1;
        private int headDim = -1;
        private int vocabSize;
        private double rmsNormEps = 1e-6;
        private Rope rope = new Rope(10000, RopeScaling.none());
        private Map<String, Rope> ropeByLayerType = new LinkedHashMap<>();
        private boolean tieWordEmbeddings;
        private boolean attentionBias;
        private boolean mlpBias;
        private GatedMlp.Activation activation;
        private int maxPositions = 2048;
        private int slidingWindow = -1;
        private WindowRule windowRule = WindowRule.NONE;
        private int firstSlidingLayer;
        private List<String> layerTypes;
        private double queryPreAttnScalar;
        private double attnLogitSoftcap;
        private double finalLogitSoftcap;
        private int bosTokenId = -1;
        private List<Integer> eosTokenIds = new ArrayList<>();

        private Builder() {}

        /**
         * Sets the family (default {@code llama}): its activation (SiLU, Gemma 2: tanh GELU), bias and norm rules;
         * Gemma 2 also gets transformers' defaults {@code query_pre_attn_scalar} 256 and softcaps 50 / 30.
         *
         * @param family the family
         * @return this builder
         */
        public Builder optFamily(Family family) {
            this.family = Objects.requireNonNull(family, "family");
            if (family == Family.GEMMA2) {
                queryPreAttnScalar = 256;
                attnLogitSoftcap = 50;
                finalLogitSoftcap = 30;
            }
            return this;
        }

        /**
         * Sets the sizes.
         *
         * @param hidden the hidden size
         * @param intermediate the MLP width
         * @param layers the number of layers
         * @param heads Hq
         * @param kvHeads Hkv
         * @param vocab the vocabulary size
         * @return this builder
         */
        public Builder setSizes(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab) {
            this.hiddenSize = hidden;
            this.intermediateSize = intermediate;
            this.numLayers = layers;
            this.numHeads = heads;
            this.numKvHeads = kvHeads;
            this.vocabSize = vocab;
            return this;
        }

        /**
         * Sets the head dim (default hidden / heads).
         *
         * @param headDim D
         * @return this builder
         */
        public Builder optHeadDim(int headDim) {
            this.headDim = headDim;
            return this;
        }

        /**
         * Sets RoPE for every layer.
         *
         * @param theta the base
         * @param scaling the scaling
         * @return this builder
         */
        public Builder optRope(double theta, RopeScaling scaling) {
            this.rope = new Rope(theta, scaling);
            this.ropeByLayerType = new LinkedHashMap<>();
            return this;
        }

        /**
         * Sets RoPE per layer type ({@link #FULL_ATTENTION}, {@link #SLIDING_ATTENTION}).
         *
         * @param byLayerType the settings by layer type
         * @return this builder
         */
        public Builder optRopeByLayerType(Map<String, Rope> byLayerType) {
            this.ropeByLayerType = new LinkedHashMap<>(byLayerType);
            this.rope = byLayerType.getOrDefault(FULL_ATTENTION, byLayerType.values().iterator().next());
            return this;
        }

        /**
         * Sets the RMSNorm epsilon.
         *
         * @param eps epsilon
         * @return this builder
         */
        public Builder optRmsNormEps(double eps) {
            this.rmsNormEps = eps;
            return this;
        }

        /**
         * Ties the LM head to the embedding.
         *
         * @param tie true to tie
         * @return this builder
         */
        public Builder optTieWordEmbeddings(boolean tie) {
            this.tieWordEmbeddings = tie;
            return this;
        }

        /**
         * Adds biases to all attention projections (Llama, Gemma 2; Qwen2 always has q, k, v biases and no o bias).
         *
         * @param bias true for biases
         * @return this builder
         */
        public Builder optAttentionBias(boolean bias) {
            this.attentionBias = bias;
            return this;
        }

        /**
         * Adds biases to the MLP projections (Llama's {@code mlp_bias}).
         *
         * @param bias true for biases
         * @return this builder
         */
        public Builder optMlpBias(boolean bias) {
            this.mlpBias = bias;
            return this;
        }

        /**
         * Sets the MLP's gate activation (default: the family's).
         *
         * @param activation the activation
         * @return this builder
         */
        public Builder optActivation(GatedMlp.Activation activation) {
            this.activation = Objects.requireNonNull(activation, "activation");
            return this;
        }

        /**
         * Sets the trained context length.
         *
         * @param max positions
         * @return this builder
         */
        public Builder optMaxPositions(int max) {
            this.maxPositions = max;
            return this;
        }

        /**
         * Sets the model's sliding window and which layers use it: Llama and Mistral every layer, Qwen2 layers
         * {@code >= firstSlidingLayer}, Gemma 2 the even layers, unless {@link #optLayerTypes} lists them.
         *
         * @param window keys a query sees (itself included), {@code >= 1}, or -1 for none
         * @param firstSlidingLayer Qwen2's {@code max_window_layers} (ignored by the other families)
         * @return this builder
         */
        public Builder optSlidingWindow(int window, int firstSlidingLayer) {
            this.slidingWindow = window;
            this.firstSlidingLayer = firstSlidingLayer;
            if (windowRule != WindowRule.EXPLICIT) {
                windowRule = window <= 0 ? WindowRule.NONE : family == Family.QWEN2 ? WindowRule.FROM_LAYER
                        : family == Family.GEMMA2 ? WindowRule.EVEN_LAYERS : WindowRule.ALL;
            }
            return this;
        }

        /**
         * Lists each layer's type ({@link #FULL_ATTENTION} or {@link #SLIDING_ATTENTION}), as {@code layer_types}.
         *
         * @param types one entry per layer
         * @return this builder
         */
        public Builder optLayerTypes(List<String> types) {
            this.layerTypes = new ArrayList<>(types);
            this.windowRule = WindowRule.EXPLICIT;
            return this;
        }

        /**
         * Sets Gemma 2's attention settings.
         *
         * @param queryPreAttnScalar softmax scale {@code scalar^-0.5} (0: {@code 1/sqrt(D)})
         * @param attnSoftcap the attention logit softcap, 0 = off
         * @param finalSoftcap the final logit softcap, 0 = off
         * @return this builder
         */
        public Builder optGemmaAttention(double queryPreAttnScalar, double attnSoftcap, double finalSoftcap) {
            this.queryPreAttnScalar = queryPreAttnScalar;
            this.attnLogitSoftcap = attnSoftcap;
            this.finalLogitSoftcap = finalSoftcap;
            return this;
        }

        /**
         * Sets special token ids.
         *
         * @param bos the BOS id or -1
         * @param eos the EOS ids
         * @return this builder
         */
        public Builder optSpecialTokens(int bos, int... eos) {
            this.bosTokenId = bos;
            this.eosTokenIds = new ArrayList<>();
            for (int e : eos) {
                eosTokenIds.add(e);
            }
            return this;
        }

        /**
         * Builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException for inconsistent sizes, naming the config key
         */
        public LlamaConfig build() {
            positive("hidden_size", hiddenSize);
            positive("intermediate_size", intermediateSize);
            positive("num_hidden_layers", numLayers);
            positive("num_attention_heads", numHeads);
            positive("vocab_size", vocabSize);
            positive("max_position_embeddings", maxPositions);
            int kv = numKvHeads < 0 ? numHeads : numKvHeads;
            if (kv <= 0 || numHeads % kv != 0) {
                throw new IllegalArgumentException("num_attention_heads (" + numHeads
                        + ") must be a multiple of num_key_value_heads (" + kv + ")");
            }
            if (headDim < 0 && hiddenSize % numHeads != 0) {
                throw new IllegalArgumentException("hidden_size (" + hiddenSize + ") is not divisible by"
                        + " num_attention_heads (" + numHeads + "); set head_dim");
            }
            int d = headDim < 0 ? hiddenSize / numHeads : headDim;
            if (d <= 0 || d % 2 != 0) {
                throw new IllegalArgumentException("head_dim must be even and > 0 for RoPE, got " + d);
            }
            if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
                throw new IllegalArgumentException("rms_norm_eps must be finite and > 0, got " + rmsNormEps);
            }
            if (family == Family.LLAMA && slidingWindow > 0) {
                throw new IllegalArgumentException("the llama family has no sliding window (transformers' Llama"
                        + " ignores sliding_window); use AttentionOptions.optSlidingWindow for a windowed run");
            }
            if (slidingWindow == 0 || slidingWindow < -1) {
                throw new IllegalArgumentException("sliding_window must be >= 1 (or null: off), got "
                        + slidingWindow);
            }
            if (windowRule == WindowRule.EXPLICIT && layerTypes.size() != numLayers) {
                throw new IllegalArgumentException("layer_types has " + layerTypes.size()
                        + " entries, but num_hidden_layers is " + numLayers);
            }
            if (windowRule == WindowRule.EXPLICIT && layerTypes.contains(SLIDING_ATTENTION) && slidingWindow <= 0) {
                throw new IllegalArgumentException("layer_types lists sliding_attention layers, but sliding_window"
                        + " is not set");
            }
            if (!(queryPreAttnScalar >= 0) || !(attnLogitSoftcap >= 0) || !(finalLogitSoftcap >= 0)
                    || Double.isInfinite(queryPreAttnScalar + attnLogitSoftcap + finalLogitSoftcap)) {
                throw new IllegalArgumentException("query_pre_attn_scalar and the softcaps must be finite and >= 0");
            }
            if (activation == null) {
                activation = family == Family.GEMMA2 ? GatedMlp.Activation.GELU_TANH : GatedMlp.Activation.SILU;
            }
            return new LlamaConfig(this);
        }

        private static void positive(String key, int v) {
            if (v <= 0) {
                throw new IllegalArgumentException(key + " must be > 0, got " + v);
            }
        }
    }
}
