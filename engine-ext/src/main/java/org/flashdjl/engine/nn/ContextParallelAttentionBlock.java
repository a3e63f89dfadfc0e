package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * Context-parallel attention: an attention block whose
 * inputs are this rank's shard of the sequence, computed over the whole sequence by the {@link
 * ContextParallelism} with the {@code ring} or {@code ulysses} method; optionally in fp32 (inputs upcast,
 * output cast back). Without a group (or a group of one rank) it is single-rank attention.
 */
public final class ContextParallelAttentionBlock extends AbstractAttentionBlock {

    private final String method;
    private final boolean convertToFp32;

    private ContextParallelAttentionBlock(Builder builder) {
        super(builder);
        this.method = builder.method;
        this.convertToFp32 = builder.convertToFp32;
    }

    /**
     * Returns a builder: layout bhsd, backend {@code auto}, method {@code ring}, fp32 on.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return {@code "ring"} or {@code "ulysses"} */
    public String getMethod() {
        return method;
    }

    /** @return whether inputs are upcast to fp32 for the exchange and the math */
    public boolean isConvertToFp32() {
        return convertToFp32;
    }

    /** {@inheritDoc} */
    @Override
    protected String contextParallelMethod() {
        return method;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray attend(NDArray query, NDArray key,
            NDArray value) {
        DataType type = query.getDataType();
        if (!convertToFp32 || type == DataType.FLOAT32
                || type == DataType.FLOAT64) {
            return super.attend(query, key, value);
        }
        DataType f32 = DataType.FLOAT32;
        try (NDArray q = query.toType(f32, true);
                NDArray k = key.toType(f32, true);
                NDArray v = value.toType(f32, true);
                NDArray out = super.attend(q, k, v)) {
            return out.toType(type, true);
        }
    }

    /** Builds a {@link ContextParallelAttentionBlock}. */
    public static final class Builder extends BaseBuilder<Builder> {
        private String method = "ring";
        private boolean convertToFp32 = true;

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the context-parallel method.
         *
         * @param method {@code "ring"} or {@code "ulysses"}
         * @return this builder
         */
        public Builder optMethod(String method) {
            if (!"ring".equals(method) && !"ulysses".equals(method)) {
                throw new IllegalArgumentException("context-parallel method must be ring or ulysses, got '" + method
                        + "'");
            }
            this.method = method;
            return this;
        }

        /**
         * Sets whether half-precision inputs are computed in fp32 (default true).
         *
         * @param convertToFp32 true to upcast
         * @return this builder
         */
        public Builder optConvertToFp32(boolean convertToFp32) {
            this.convertToFp32 = convertToFp32;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         */
        public ContextParallelAttentionBlock build() {
            return new ContextParallelAttentionBlock(this);
        }
    }
}
