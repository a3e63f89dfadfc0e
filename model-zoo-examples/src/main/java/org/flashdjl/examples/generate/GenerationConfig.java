package org.flashdjl.examples.generate;

import java.util.Locale;

/**
 * How to generate: the number of new tokens and the sampling rule. Greedy (argmax) by default; a temperature
 * above 0 samples from {@code softmax(logits / temperature)} restricted by top-k and top-p, drawn with a seeded
 * generator so runs repeat.
 */
public final class GenerationConfig {

    private final int maxNewTokens;
    private final float temperature;
    private final int topK;
    private final float topP;
    private final long seed;
    private final boolean stopAtEos;
    private final boolean addBos;

    private GenerationConfig(Builder b) {
        this.maxNewTokens = b.maxNewTokens;
        this.temperature = b.temperature;
        this.topK = b.topK;
        this.topP = b.topP;
        this.seed = b.seed;
        this.stopAtEos = b.stopAtEos;
        this.addBos = b.addBos;
    }

    /**
     * Returns a builder: 64 new tokens, greedy, stop at EOS, BOS prepended.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the most tokens to generate */
    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /** @return the temperature; 0 = greedy */
    public float getTemperature() {
        return temperature;
    }

    /** @return top-k, 0 = off */
    public int getTopK() {
        return topK;
    }

    /** @return top-p, 1 = off */
    public float getTopP() {
        return topP;
    }

    /** @return the sampling seed */
    public long getSeed() {
        return seed;
    }

    /** @return whether an EOS token ends generation */
    public boolean isStopAtEos() {
        return stopAtEos;
    }

    /** @return whether the tokenizer's BOS is prepended to the prompt */
    public boolean isAddBos() {
        return addBos;
    }

    /** @return whether sampling is greedy */
    public boolean isGreedy() {
        return temperature == 0;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return isGreedy() ? "greedy" : String.format(Locale.ROOT, "temperature=%s, top_k=%d, top_p=%s, seed=%d",
                temperature, topK, topP, seed);
    }

    /** Builds a {@link GenerationConfig}. */
    public static final class Builder {
        private int maxNewTokens = 64;
        private float temperature;
        private int topK;
        private float topP = 1f;
        private long seed = 42;
        private boolean stopAtEos = true;
        private boolean addBos = true;

        private Builder() {}

        /**
         * Sets the most tokens to generate.
         *
         * @param n {@code >= 1}
         * @return this builder
         */
        public Builder optMaxNewTokens(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + n);
            }
            this.maxNewTokens = n;
            return this;
        }

        /**
         * Sets the temperature (0 = greedy).
         *
         * @param t {@code >= 0}
         * @return this builder
         */
        public Builder optTemperature(float t) {
            if (!(t >= 0) || Float.isInfinite(t)) {
                throw new IllegalArgumentException("temperature must be finite and >= 0, got " + t);
            }
            this.temperature = t;
            return this;
        }

        /**
         * Keeps the k most likely tokens when sampling (0 = all).
         *
         * @param k {@code >= 0}
         * @return this builder
         */
        public Builder optTopK(int k) {
            if (k < 0) {
                throw new IllegalArgumentException("top_k must be >= 0, got " + k);
            }
            this.topK = k;
            return this;
        }

        /**
         * Keeps the smallest set of tokens whose probability reaches p when sampling (1 = all).
         *
         * @param p in (0, 1]
         * @return this builder
         */
        public Builder optTopP(float p) {
            if (!(p > 0 && p <= 1)) {
                throw new IllegalArgumentException("top_p must be in (0, 1], got " + p);
            }
            this.topP = p;
            return this;
        }

        /**
         * Sets the sampling seed.
         *
         * @param seed the seed
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Sets whether EOS ends generation (default true).
         *
         * @param stop true to stop
         * @return this builder
         */
        public Builder optStopAtEos(boolean stop) {
            this.stopAtEos = stop;
            return this;
        }

        /**
         * Sets whether BOS is prepended (default true, when the tokenizer has one).
         *
         * @param add true to prepend
         * @return this builder
         */
        public Builder optAddBos(boolean add) {
            this.addBos = add;
            return this;
        }

        /**
         * Builds the config.
         *
         * @return the config
         */
        public GenerationConfig build() {
            return new GenerationConfig(this);
        }
    }
}
