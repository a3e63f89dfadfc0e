package org.flashdjl.examples.llama;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.safetensors.CheckpointException;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * The architecture of a LLaMA-family model, read from a Hugging Face {@code config.json} ({@code llama},
 * {@code mistral}, {@code qwen2} and alike) or built in code.
 *
 * <p>Required keys: {@code hidden_size}, {@code intermediate_size}, {@code num_hidden_layers},
 * {@code num_attention_heads}, {@code vocab_size}. Optional, with Hugging Face's defaults:
 * {@code num_key_value_heads} (= heads), {@code head_dim} (= hidden / heads), {@code rms_norm_eps} (1e-6),
 * {@code rope_theta} (10000), {@code rope_scaling} ({@code linear} or {@code llama3}), {@code
 * tie_word_embeddings} (false), {@code attention_bias} (false), {@code max_position_embeddings} (2048),
 * {@code sliding_window} (none), {@code bos_token_id}, {@code eos_token_id} (an id or a list).
 */
public final class LlamaConfig {

    private final String modelType;
    private final int hiddenSize;
    private final int intermediateSize;
    private final int numLayers;
    private final int numHeads;
    private final int numKvHeads;
    private final int headDim;
    private final int vocabSize;
    private final double rmsNormEps;
    private final double ropeTheta;
    private final RopeScaling ropeScaling;
    private final boolean tieWordEmbeddings;
    private final boolean attentionBias;
    private final boolean qkvBias;
    private final int maxPositions;
    private final int slidingWindow;
    private final int bosTokenId;
    private final List<Integer> eosTokenIds;

    private LlamaConfig(Builder b) {
        this.modelType = b.modelType;
        this.hiddenSize = b.hiddenSize;
        this.intermediateSize = b.intermediateSize;
        this.numLayers = b.numLayers;
        this.numHeads = b.numHeads;
        this.numKvHeads = b.numKvHeads < 0 ? b.numHeads : b.numKvHeads;
        this.headDim = b.headDim < 0 ? b.hiddenSize / b.numHeads : b.headDim;
        this.vocabSize = b.vocabSize;
        this.rmsNormEps = b.rmsNormEps;
        this.ropeTheta = b.ropeTheta;
        this.ropeScaling = b.ropeScaling;
        this.tieWordEmbeddings = b.tieWordEmbeddings;
        this.attentionBias = b.attentionBias;
        this.qkvBias = b.qkvBias || b.attentionBias;
        this.maxPositions = b.maxPositions;
        this.slidingWindow = b.slidingWindow;
        this.bosTokenId = b.bosTokenId;
        this.eosTokenIds = Collections.unmodifiableList(new ArrayList<>(b.eosTokenIds));
    }

    /**
     * Returns a builder for a config made in code.
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
     * @throws CheckpointException naming the file and key when a key is missing or invalid
     * @throws IOException if the file cannot be read
     */
    public static LlamaConfig read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, null, "config file not found");
        }
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
            if (!e.isJsonObject()) {
                throw new CheckpointException(file, null, "not a JSON object");
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage(), e);
        }
        Builder b = builder();
        b.modelType = o.has("model_type") ? o.get("model_type").getAsString() : "llama";
        b.hiddenSize = requiredInt(file, o, "hidden_size");
        b.intermediateSize = requiredInt(file, o, "intermediate_size");
        b.numLayers = requiredInt(file, o, "num_hidden_layers");
        b.numHeads = requiredInt(file, o, "num_attention_heads");
        b.vocabSize = requiredInt(file, o, "vocab_size");
        b.numKvHeads = optInt(file, o, "num_key_value_heads", -1);
        b.headDim = optInt(file, o, "head_dim", -1);
        b.rmsNormEps = optDouble(file, o, "rms_norm_eps", 1e-6);
        b.ropeTheta = optDouble(file, o, "rope_theta", 10000);
        b.tieWordEmbeddings = optBool(file, o, "tie_word_embeddings", false);
        b.attentionBias = optBool(file, o, "attention_bias", false);
        b.qkvBias = "qwen2".equals(b.modelType);
        b.maxPositions = optInt(file, o, "max_position_embeddings", 2048);
        b.slidingWindow = optInt(file, o, "sliding_window", -1);
        if (o.has("use_sliding_window") && !o.get("use_sliding_window").getAsBoolean()) {
            b.slidingWindow = -1;
        }
        b.bosTokenId = optInt(file, o, "bos_token_id", -1);
        b.eosTokenIds = new ArrayList<>();
        JsonElement eos = o.get("eos_token_id");
        if (eos != null && !eos.isJsonNull()) {
            try {
                if (eos.isJsonArray()) {
                    for (JsonElement x : eos.getAsJsonArray()) {
                        b.eosTokenIds.add(x.getAsInt());
                    }
                } else {
                    b.eosTokenIds.add(eos.getAsInt());
                }
            } catch (RuntimeException ex) {
                throw new CheckpointException(file, "eos_token_id", "must be an integer or a list of integers, got "
                        + eos);
            }
        }
        b.ropeScaling = ropeScaling(file, o.get("rope_scaling"));
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, null, e.getMessage(), e);
        }
    }

    private static RopeScaling ropeScaling(Path file, JsonElement e) throws CheckpointException {
        if (e == null || e.isJsonNull()) {
            return RopeScaling.none();
        }
        if (!e.isJsonObject()) {
            throw new CheckpointException(file, "rope_scaling", "must be an object or null, got " + e);
        }
        JsonObject o = e.getAsJsonObject();
        String type = o.has("rope_type") ? o.get("rope_type").getAsString()
                : o.has("type") ? o.get("type").getAsString() : "default";
        try {
            switch (type.toLowerCase(Locale.ROOT)) {
                case "default":
                    return RopeScaling.none();
                case "linear":
                    return RopeScaling.linear(requiredDouble(file, o, "rope_scaling.factor", "factor"));
                case "llama3":
                    return RopeScaling.llama3(requiredDouble(file, o, "rope_scaling.factor", "factor"),
                            requiredDouble(file, o, "rope_scaling.low_freq_factor", "low_freq_factor"),
                            requiredDouble(file, o, "rope_scaling.high_freq_factor", "high_freq_factor"),
                            (long) requiredDouble(file, o, "rope_scaling.original_max_position_embeddings",
                                    "original_max_position_embeddings"));
                default:
                    throw new CheckpointException(file, "rope_scaling", "rope_type '" + type
                            + "' is not supported; supported: default, linear, llama3");
            }
        } catch (IllegalArgumentException ex) {
            throw new CheckpointException(file, "rope_scaling", ex.getMessage(), ex);
        }
    }

    private static int requiredInt(Path file, JsonObject o, String key) throws CheckpointException {
        if (!o.has(key) || o.get(key).isJsonNull()) {
            throw new CheckpointException(file, key, "required config key is missing");
        }
        return optInt(file, o, key, 0);
    }

    private static double requiredDouble(Path file, JsonObject o, String path, String key)
            throws CheckpointException {
        if (!o.has(key) || o.get(key).isJsonNull()) {
            throw new CheckpointException(file, path, "required config key is missing");
        }
        try {
            return o.get(key).getAsDouble();
        } catch (RuntimeException e) {
            throw new CheckpointException(file, path, "must be a number, got " + o.get(key));
        }
    }

    private static int optInt(Path file, JsonObject o, String key, int def) throws CheckpointException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        try {
            if (e.isJsonArray()) {
                throw new NumberFormatException();
            }
            double d = e.getAsDouble();
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw new NumberFormatException();
            }
            return (int) d;
        } catch (RuntimeException ex) {
            throw new CheckpointException(file, key, "must be an integer, got " + e);
        }
    }

    private static double optDouble(Path file, JsonObject o, String key, double def) throws CheckpointException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        try {
            return e.getAsDouble();
        } catch (RuntimeException ex) {
            throw new CheckpointException(file, key, "must be a number, got " + e);
        }
    }

    private static boolean optBool(Path file, JsonObject o, String key, boolean def) throws CheckpointException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new CheckpointException(file, key, "must be true or false, got " + e);
        }
        return e.getAsBoolean();
    }

    /**
     * Writes this config as a Hugging Face {@code config.json}.
     *
     * @return the JSON object
     */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("LlamaForCausalLM");
        o.add("architectures", arch);
        o.addProperty("model_type", modelType);
        o.addProperty("hidden_size", hiddenSize);
        o.addProperty("intermediate_size", intermediateSize);
        o.addProperty("num_hidden_layers", numLayers);
        o.addProperty("num_attention_heads", numHeads);
        o.addProperty("num_key_value_heads", numKvHeads);
        o.addProperty("head_dim", headDim);
        o.addProperty("vocab_size", vocabSize);
        o.addProperty("rms_norm_eps", rmsNormEps);
        o.addProperty("rope_theta", ropeTheta);
        if (ropeScaling.getType() != RopeScaling.Type.NONE) {
            JsonObject rs = new JsonObject();
            rs.addProperty("rope_type", ropeScaling.getType() == RopeScaling.Type.LINEAR ? "linear" : "llama3");
            rs.addProperty("factor", ropeScaling.getFactor());
            if (ropeScaling.getType() == RopeScaling.Type.LLAMA3) {
                rs.addProperty("low_freq_factor", ropeScaling.getLowFreqFactor());
                rs.addProperty("high_freq_factor", ropeScaling.getHighFreqFactor());
                rs.addProperty("original_max_position_embeddings", ropeScaling.getOriginalMaxPositions());
            }
            o.add("rope_scaling", rs);
        }
        o.addProperty("tie_word_embeddings", tieWordEmbeddings);
        o.addProperty("attention_bias", attentionBias);
        o.addProperty("max_position_embeddings", maxPositions);
        if (bosTokenId >= 0) {
            o.addProperty("bos_token_id", bosTokenId);
        }
        if (eosTokenIds.size() == 1) {
            o.addProperty("eos_token_id", eosTokenIds.get(0));
        } else if (!eosTokenIds.isEmpty()) {
            JsonArray a = new JsonArray();
            eosTokenIds.forEach(a::add);
            o.add("eos_token_id", a);
        }
        o.addProperty("torch_dtype", "float32");
        return o;
    }

    /** @return Hugging Face's {@code model_type} */
    public String getModelType() {
        return modelType;
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

    /** @return the RoPE base */
    public double getRopeTheta() {
        return ropeTheta;
    }

    /** @return the RoPE scaling */
    public RopeScaling getRopeScaling() {
        return ropeScaling;
    }

    /** @return whether the LM head reuses the embedding matrix */
    public boolean isTieWordEmbeddings() {
        return tieWordEmbeddings;
    }

    /** @return whether all attention projections have biases ({@code attention_bias}) */
    public boolean isAttentionBias() {
        return attentionBias;
    }

    /** @return whether q, k, v projections have biases ({@code attention_bias} or Qwen2) */
    public boolean isQkvBias() {
        return qkvBias;
    }

    /** @return the trained context length */
    public int getMaxPositions() {
        return maxPositions;
    }

    /** @return the model's own sliding window, or -1 */
    public int getSlidingWindow() {
        return slidingWindow;
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
        return String.format(Locale.ROOT, "%s(hidden=%d, layers=%d, heads=%d, kv_heads=%d, head_dim=%d,"
                + " mlp=%d, vocab=%d, rope_theta=%s, rope_scaling=%s, tied=%s)", modelType, hiddenSize, numLayers,
                numHeads, numKvHeads, headDim, intermediateSize, vocabSize, ropeTheta, ropeScaling,
                tieWordEmbeddings);
    }

    /** Builds a {@link LlamaConfig}. */
    public static final class Builder {
        private String modelType = "llama";
        private int hiddenSize;
        private int intermediateSize;
        private int numLayers;
        private int numHeads;
        private int numKvHeads = -1;
        private int headDim = -1;
        private int vocabSize;
        private double rmsNormEps = 1e-6;
        private double ropeTheta = 10000;
        private RopeScaling ropeScaling = RopeScaling.none();
        private boolean tieWordEmbeddings;
        private boolean attentionBias;
        private boolean qkvBias;
        private int maxPositions = 2048;
        private int slidingWindow = -1;
        private int bosTokenId = -1;
        private List<Integer> eosTokenIds = new ArrayList<>();

        private Builder() {}

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
         * Sets RoPE.
         *
         * @param theta the base
         * @param scaling the scaling
         * @return this builder
         */
        public Builder optRope(double theta, RopeScaling scaling) {
            this.ropeTheta = theta;
            this.ropeScaling = scaling;
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
         * Adds biases to all attention projections.
         *
         * @param bias true for biases
         * @return this builder
         */
        public Builder optAttentionBias(boolean bias) {
            this.attentionBias = bias;
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
         * @throws IllegalArgumentException for inconsistent sizes
         */
        public LlamaConfig build() {
            positive("hidden_size", hiddenSize);
            positive("intermediate_size", intermediateSize);
            positive("num_hidden_layers", numLayers);
            positive("num_attention_heads", numHeads);
            positive("vocab_size", vocabSize);
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
            if (d % 2 != 0) {
                throw new IllegalArgumentException("head_dim must be even for RoPE, got " + d);
            }
            if (!(rmsNormEps > 0)) {
                throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
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
