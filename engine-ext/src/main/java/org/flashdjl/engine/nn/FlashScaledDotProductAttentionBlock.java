package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionSpec;

/**
 * A drop-in for DJL's {@code ai.djl.nn.transformer.ScaledDotProductAttentionBlock} whose attention runs through
 * a FlashDJL backend.
 *
 * <p>Same builder ({@code setEmbeddingSize}, {@code setHeadCount}, {@code optAttentionProbsDropoutProb}), same
 * inputs (1 to 4 arrays: {@code [x]}, {@code [x, mask]}, {@code [keys, queries, values]}, {@code [keys, queries,
 * values, mask]}, each {@code (B, S, E)}, mask {@code (B, T, F)} with 1 = keep), same child blocks in the same
 * order ({@code keyProjection}, {@code queryProjection}, {@code valueProjection}, {@code resultProjection},
 * {@code probabilityDropout}) and the same version byte, so {@code saveParameters} of either block loads into
 * the other and both give the same outputs.
 *
 * <p>Unmasked inference (and any call with {@link Builder#optCausal causal} set) goes through
 * {@link Attention#forward} with the chosen backend, never materialising the (T, F) scores with the {@code online}
 * or {@code flash} backends. A user mask, or dropout in training, takes DJL's exact path (additive {@code -1e5}
 * offset on masked scores, softmax, dropout on the probabilities), so masked outputs match DJL's too.
 */
public final class FlashScaledDotProductAttentionBlock extends AbstractBlock {

    private static final byte VERSION = 1; // DJL's ScaledDotProductAttentionBlock.VERSION

    private final int embeddingSize;
    private final int headCount;
    private final Linear keyProjection;
    private final Linear queryProjection;
    private final Linear valueProjection;
    private final Linear resultProjection;
    private final Dropout attentionProbsDropout;
    private final float dropoutProb;
    private final String backend;
    private final boolean causal;

    private FlashScaledDotProductAttentionBlock(Builder builder) {
        super(VERSION);
        this.embeddingSize = builder.embeddingSize;
        this.headCount = builder.headCount;
        this.dropoutProb = builder.attentionProbsDropoutProb;
        this.backend = AttentionBackends.check(builder.backend);
        this.causal = builder.causal;
        this.keyProjection = addChildBlock("keyProjection", buildProjection());
        this.queryProjection = addChildBlock("queryProjection", buildProjection());
        this.valueProjection = addChildBlock("valueProjection", buildProjection());
        this.resultProjection = addChildBlock("resultProjection", buildProjection());
        this.attentionProbsDropout = addChildBlock("probabilityDropout",
                Dropout.builder().optRate(builder.attentionProbsDropoutProb).build());
    }

    private Linear buildProjection() {
        return Linear.builder().setUnits(embeddingSize).optBias(true).build();
    }

    /**
     * Returns a builder (dropout 0.1, backend {@code auto}, not causal, as DJL's defaults).
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the key projection (E to E, with bias) */
    public Linear getKeyProjection() {
        return keyProjection;
    }

    /** @return the query projection */
    public Linear getQueryProjection() {
        return queryProjection;
    }

    /** @return the value projection */
    public Linear getValueProjection() {
        return valueProjection;
    }

    /** @return the result projection */
    public Linear getResultProjection() {
        return resultProjection;
    }

    /** @return the attention backend name */
    public String getBackend() {
        return backend;
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        if (inputShapes.length == 1 || inputShapes.length == 2) {
            return new Shape[] {inputShapes[0]};
        } else if (inputShapes.length == 3 || inputShapes.length == 4) {
            return new Shape[] {inputShapes[1]};
        }
        throw new IllegalArgumentException("Invalid number of input shapes: " + inputShapes.length + ", must be 1-4.");
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        // As DJL: the projections see (B * S, E) inputs and are always initialised in fp32.
        Shape projectionShape = new Shape(-1L, embeddingSize);
        for (Block projection : children.values()) {
            projection.initialize(manager, DataType.FLOAT32, projectionShape);
        }
    }

    // (B * S, E) -> (B, N, S, H)
    private static NDArray heads(NDArray projection, long b, long s, long n, long h) {
        return projection.reshape(b, s, n, h).transpose(0, 2, 1, 3);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        if (inputs.isEmpty() || inputs.size() > 4) {
            throw new IllegalArgumentException("ScaledDotProductAttention takes 1-4 inputs, got " + inputs.size());
        }
        final long e = embeddingSize;
        final long b = inputs.head().getShape().get(0);
        final long n = headCount;
        final long h = e / n;
        final long f; // key/value ("from") length
        final long t; // query ("to") length
        NDList keyIn;
        NDList queryIn;
        NDList valueIn;
        if (inputs.size() < 3) {
            f = inputs.head().getShape().get(1);
            t = f;
            keyIn = new NDList(inputs.head().reshape(b * f, e));
            queryIn = keyIn;
            valueIn = keyIn;
        } else {
            f = inputs.get(0).getShape().get(1);
            t = inputs.get(1).getShape().get(1);
            keyIn = new NDList(inputs.get(0).reshape(b * f, e));
            queryIn = new NDList(inputs.get(1).reshape(b * t, e));
            valueIn = new NDList(inputs.get(2).reshape(b * f, e));
        }
        NDArray mask = inputs.size() == 2 || inputs.size() == 4 ? inputs.get(inputs.size() - 1) : null;
        NDArray keys = heads(keyProjection.forward(ps, keyIn, training, params).head(), b, f, n, h); // [B, N, F, H]
        NDArray queries = heads(queryProjection.forward(ps, queryIn, training, params).head(), b, t, n, h); // [B, N, T, H]
        NDArray values = heads(valueProjection.forward(ps, valueIn, training, params).head(), b, f, n, h); // [B, N, F, H]
        NDArray result; // [B, N, T, H]
        boolean dropout = training && dropoutProb > 0;
        if (mask == null && !dropout) {
            AttentionSpec spec = AttentionSpec.builder().optCausal(causal).build();
            result = Attention.forward(queries, keys, values, spec, backend).getOutput(); // the caller's, like any op
        } else {
            result = explicitAttention(ps, queries, keys, values, mask, b, t, f, h, training);
        }
        NDArray embeddings = result.transpose(0, 2, 1, 3).reshape(b * t, e); // [B * T, E]
        NDArray projected = resultProjection.forward(ps, new NDList(embeddings), training).head();
        return new NDList(projected.reshape(b, t, e)); // [B, T, E]
    }

    // DJL's own formulation, for user masks and training-time dropout.
    private NDArray explicitAttention(ParameterStore ps, NDArray queries, NDArray keys, NDArray values, NDArray mask,
            long b, long t, long f, long h, boolean training) {
        NDManager m = queries.getManager();
        NDArray scores = queries.matMul(keys.transpose(0, 1, 3, 2)).mul(m.create(1f / (float) Math.sqrt(h)));
        if (causal) {
            NDArray rows = m.arange(0L, t, 1L, DataType.INT64).reshape(t, 1).add(f - t);
            NDArray cols = m.arange(0L, f, 1L, DataType.INT64).reshape(1, f);
            NDArray causalKeep = cols.lte(rows).toType(DataType.FLOAT32, false).reshape(1, 1, t, f);
            scores = scores.add(causalKeep.mul(-1f).add(1f).mul(-100000f));
        }
        if (mask != null) {
            NDArray expanded = mask.reshape(b, 1, t, f);
            NDArray offset = expanded.toType(DataType.FLOAT32, false).mul(m.create(-1f)).add(m.create(1f))
                    .mul(m.create(-100000f));
            scores = scores.add(offset);
        }
        NDArray probs = scores.softmax(3);
        probs = attentionProbsDropout.forward(ps, new NDList(probs), training).singletonOrThrow();
        return probs.matMul(values);
    }

    /** Builds a {@link FlashScaledDotProductAttentionBlock}. */
    public static final class Builder {
        private int embeddingSize;
        private int headCount;
        private float attentionProbsDropoutProb = 0.1f;
        private String backend = "auto";
        private boolean causal;

        private Builder() {}

        /**
         * Sets the embedding size E.
         *
         * @param embeddingSize E
         * @return this builder
         */
        public Builder setEmbeddingSize(int embeddingSize) {
            this.embeddingSize = embeddingSize;
            return this;
        }

        /**
         * Sets the number of heads N; must divide E.
         *
         * @param headCount N
         * @return this builder
         */
        public Builder setHeadCount(int headCount) {
            this.headCount = headCount;
            return this;
        }

        /**
         * Sets the dropout probability on attention probabilities in training (default 0.1).
         *
         * @param attentionProbsDropoutProb the probability
         * @return this builder
         */
        public Builder optAttentionProbsDropoutProb(float attentionProbsDropoutProb) {
            this.attentionProbsDropoutProb = attentionProbsDropoutProb;
            return this;
        }

        /**
         * Sets the attention backend (default {@code auto}).
         *
         * @param backend a dense backend name or {@code auto}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            this.backend = backend;
            return this;
        }

        /**
         * Adds a bottom-right aligned causal mask (not in DJL's block; default off).
         *
         * @param causal true for causal attention
         * @return this builder
         */
        public Builder optCausal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException when E or N is missing or N does not divide E
         */
        public FlashScaledDotProductAttentionBlock build() {
            if (embeddingSize == 0) {
                throw new IllegalArgumentException("Embedding size not initialized.");
            }
            if (headCount == 0) {
                throw new IllegalArgumentException("Head count not initialized.");
            }
            if (embeddingSize % headCount != 0) {
                throw new IllegalArgumentException("Embedding Size (" + embeddingSize
                        + ") is not divisible by head count (" + headCount + ")");
            }
            return new FlashScaledDotProductAttentionBlock(this);
        }
    }
}
