package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.SequenceSharding;

import java.util.Objects;

/**
 * The common part of {@link NativeAttentionBlock} and {@link ContextParallelAttentionBlock}: attention with a
 * configurable q/k/v layout and backend, as a parameter-free DJL {@code Block}: input {@code NDList(query, key, value)} in the block's {@link #getQkvFormat() format},
 * output {@code NDList(out)} in the same format. GQA/MQA by head ratio.
 *
 * <p>With a {@link #setContextParallelGroup context-parallel group} the inputs are this rank's sequence shards
 * and the group computes the full-sequence attention; with none (the default) attention is single-rank.
 *
 * <pre>{@code
 * NativeAttentionBlock attn = NativeAttentionBlock.builder().optQkvFormat("bshd").optBackend("online")
 *         .optCausal(true).build();
 * NDArray out = attn.forward(ps, new NDList(q, k, v), false).head();
 * }</pre>
 */
public abstract class AbstractAttentionBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final AttentionSpec spec;
    private final String backend;
    private volatile ContextParallelism group;

    /**
     * Creates the block from a builder.
     *
     * @param builder the builder
     */
    protected AbstractAttentionBlock(BaseBuilder<?> builder) {
        super(VERSION);
        this.spec = builder.spec.toBuilder().optLayout(builder.layout).optCausal(builder.causal).build();
        this.backend = AttentionBackends.check(builder.backend);
    }

    /**
     * Enables or disables context parallelism over a process group ({@code
     * set_context_parallel_group}): the inputs become this rank's zigzag sequence shards ({@code
     * ContextParallel.shard(x, seqAxis, rank, world, SequenceSharding.ZIGZAG)}) and the output is this rank's shard.
     *
     * @param group the group, or null to disable (single-rank attention)
     */
    public void setContextParallelGroup(ProcessGroup group) {
        this.group = group == null ? null : new ProcessGroupContextParallelism(group, SequenceSharding.ZIGZAG);
    }

    /**
     * Sets the context-parallel strategy directly (any {@link ContextParallelism}, e.g. a custom transport).
     *
     * @param parallelism the strategy, or null to disable
     */
    public void setContextParallelism(ContextParallelism parallelism) {
        this.group = parallelism;
    }

    /** @return the context-parallel strategy, or null when disabled */
    public ContextParallelism getContextParallelism() {
        return group;
    }

    /** @return the q/k/v/output layout */
    public QkvLayout getQkvFormat() {
        return spec.getLayout();
    }

    /** @return the backend name */
    public String getBackend() {
        return backend;
    }

    /** @return the attention spec (layout and causal flag included) */
    public AttentionSpec getSpec() {
        return spec;
    }

    /**
     * Returns the context-parallel method this block asks its group for.
     *
     * @return {@code "ring"} or {@code "ulysses"}
     */
    protected abstract String contextParallelMethod();

    /**
     * Computes attention on arrays directly.
     *
     * @param query [B, Hq, Lq, D] (bhsd) or [B, Lq, Hq, D] (bshd)
     * @param key [B, Hkv, Lk, D] or [B, Lk, Hkv, D]
     * @param value [B, Hkv, Lk, Dv] or [B, Lk, Hkv, Dv]
     * @return the output in the same layout: [B, Hq, Lq, Dv] or [B, Lq, Hq, Dv]
     */
    public NDArray attend(NDArray query, NDArray key, NDArray value) {
        ContextParallelism g = group;
        AttentionOutput out = g == null || g.getWorldSize() == 1
                ? Attention.forward(query, key, value, spec, backend)
                : g.attention(query, key, value, spec, backend, contextParallelMethod());
        if (out.getLse() != null) {
            out.getLse().close();
        }
        return out.getOutput();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore parameterStore, NDList inputs, boolean training,
            PairList<String, Object> params) {
        if (inputs.size() != 3) {
            throw new IllegalArgumentException(getClass().getSimpleName() + " takes NDList(query, key, value) in "
                    + spec.getLayout().axes() + ", got " + inputs.size() + " arrays");
        }
        return new NDList(attend(inputs.get(0), inputs.get(1), inputs.get(2)));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        if (inputShapes.length != 3) {
            throw new IllegalArgumentException("expected 3 input shapes (query, key, value), got "
                    + inputShapes.length);
        }
        Shape q = inputShapes[0];
        Shape v = inputShapes[2];
        return new Shape[] {new Shape(q.get(0), q.get(1), q.get(2), v.get(3))};
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return getClass().getSimpleName() + "(" + spec.getLayout().name().toLowerCase() + ", backend=" + backend
                + ", causal=" + spec.isCausal() + (group == null ? "" : ", cp=" + group.getWorldSize()) + ")";
    }

    /**
     * The options of attention blocks.
     *
     * @param <T> the concrete builder
     */
    public abstract static class BaseBuilder<T extends BaseBuilder<T>> {
        QkvLayout layout = QkvLayout.BHSD;
        String backend = "auto";
        boolean causal;
        AttentionSpec spec = AttentionSpec.builder().build();

        /**
         * Returns this builder.
         *
         * @return this
         */
        protected abstract T self();

        /**
         * Sets the q/k/v/output layout (default bhsd).
         *
         * @param format {@code "bhsd"} or {@code "bshd"}
         * @return this builder
         */
        public T optQkvFormat(String format) {
            this.layout = QkvLayout.of(format);
            return self();
        }

        /**
         * Sets the backend (default {@code auto}); checked against the registry when built.
         *
         * @param backend a dense backend name or {@code auto}
         * @return this builder
         */
        public T optBackend(String backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return self();
        }

        /**
         * Sets the bottom-right aligned causal mask (default off).
         *
         * @param causal true for causal attention
         * @return this builder
         */
        public T optCausal(boolean causal) {
            this.causal = causal;
            return self();
        }

        /**
         * Sets the other attention options (scale, window, sinks, ALiBi, softcap); layout and causal come from
         * this builder.
         *
         * @param spec the spec
         * @return this builder
         */
        public T optSpec(AttentionSpec spec) {
            this.spec = Objects.requireNonNull(spec, "spec");
            return self();
        }
    }
}
