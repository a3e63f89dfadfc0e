package org.flashdjl.engine.nn;

/**
 * Attention with a configurable q/k/v layout and backend, as a parameter-free DJL {@code Block}: input
 * {@code NDList(query, key, value)} in the block's {@link #getQkvFormat() format}, output {@code NDList(out)} in the
 * same format. GQA/MQA by head ratio.
 *
 * <p>With a {@link #setContextParallelGroup context-parallel group} the inputs are this rank's sequence shards
 * and the group computes the full-sequence attention (ring); with none (the default) attention is single-rank.
 *
 * <pre>{@code
 * NativeAttentionBlock attn = NativeAttentionBlock.builder().optQkvFormat("bshd").optBackend("online")
 *         .optCausal(true).build();
 * NDArray out = attn.forward(ps, new NDList(q, k, v), false).head();
 * }</pre>
 */
public final class NativeAttentionBlock extends AbstractAttentionBlock {

    private NativeAttentionBlock(Builder builder) {
        super(builder);
    }

    /**
     * Returns a builder: layout bhsd, backend {@code auto}, not causal.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@inheritDoc} */
    @Override
    protected String contextParallelMethod() {
        return "ring";
    }

    /** Builds a {@link NativeAttentionBlock}. */
    public static final class Builder extends BaseBuilder<Builder> {

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException for an unknown or non-dense backend
         */
        public NativeAttentionBlock build() {
            return new NativeAttentionBlock(this);
        }
    }
}
