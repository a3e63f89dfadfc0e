package org.flashdjl.ops.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.DeviceWorkspace;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;

import java.util.Locale;
import java.util.Objects;

/**
 * Context-parallel attention: q, k and v
 * are sharded along the sequence over the ranks of a {@link ProcessGroup}, and each rank computes the output of
 * its own query shard as if the whole sequence were on one device.
 *
 * <ul>
 *   <li>{@link Method#RING}: key/value shards travel around the ring while each rank attends its queries to the
 *       shard it holds; the next transfer is posted before the current block is computed (overlap); partial
 *       outputs merge by LSE (in fp32 when {@code convertToFp32}). With the {@link SequenceSharding#ZIGZAG zigzag}
 *       sharding every rank does the same work under a causal mask. Any head count, GQA, mask, ALiBi.
 *   <li>{@link Method#ULYSSES}: all-to-all from sequence shards to head shards, local attention over the full
 *       sequence, all-to-all back. Needs query heads divisible by the world size; KV heads are replicated when
 *       they are not.
 * </ul>
 *
 * <p><b>On GPUs.</b> With an {@link NcclProcessGroup}, GPU NDArrays and the {@code flash} backend ({@code auto}
 * too, for fp16), the forward runs on device memory: {@link DeviceRingAttention} (flash kernels per block, at the
 * blocks' global positions where the mask needs them; NCCL transfers overlapping compute; merges by
 * {@code MergeStateKernel}) or
 * {@link DeviceUlyssesAttention}; {@link #forward(DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor,
 * DeviceTensor, AttentionSpec)} takes raw device views (JCuda memory, bf16). Scratch lives until {@link #close()}.
 *
 * <p>Without a group (the default, or {@code setContextParallelGroup(null)}) or with a group of one rank,
 * {@link #forward} is exactly {@link Attention#forward(NDArray, NDArray, NDArray, AttentionSpec, String)}.
 *
 * <pre>{@code
 * ContextParallelAttention attn = ContextParallelAttention.builder()
 *         .optLayout(QkvLayout.BSHD).optBackend("flash").optMethod(ContextParallelAttention.Method.RING).build();
 * attn.setContextParallelGroup(group);
 * NDArray q = ContextParallel.shard(qFull, 1, group.rank(), group.size(), SequenceSharding.ZIGZAG); // k, v alike
 * NDArray out = attn.forward(q, k, v, AttentionSpec.builder().optCausal(true).build()).getOutput();
 * }</pre>
 */
public final class ContextParallelAttention implements AutoCloseable {

    /** How the ranks share the work. */
    public enum Method {
        /** Ring attention: key/value shards circulate, outputs merge by LSE. */
        RING("key/value shards passed around the ring, states merged by LSE"),
        /** DeepSpeed-Ulysses: all-to-all to head shards, local attention, all-to-all back. */
        ULYSSES("all-to-all from sequence shards to head shards and back");

        private final String description;

        Method(String description) {
            this.description = description;
        }

        /**
         * Returns a one-line description for the capability report.
         *
         * @return the description
         */
        public String getDescription() {
            return description;
        }

        /**
         * Parses {@code "ring"} or {@code "ulysses"} (any case).
         *
         * @param name the method name
         * @return the method
         * @throws IllegalArgumentException naming the allowed values
         */
        public static Method of(String name) {
            for (Method m : values()) {
                if (m.name().equalsIgnoreCase(name)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown context-parallel method '" + name
                    + "'; allowed: ring, ulysses");
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final String FLASH = "flash";

    private final QkvLayout layout;
    private final String backend;
    private final Method method;
    private final boolean convertToFp32;
    private final SequenceSharding sharding;
    private volatile ProcessGroup group;
    private DeviceRingAttention deviceRing; // lazily, for the group it was made for
    private DeviceUlyssesAttention deviceUlysses;
    private NcclProcessGroup deviceGroup;
    private DeviceWorkspace singleRank; // lazily, for the single-rank device path

    private ContextParallelAttention(Builder b) {
        this.layout = b.layout;
        this.backend = b.backend;
        this.method = b.method;
        this.convertToFp32 = b.convertToFp32;
        this.sharding = b.sharding;
        this.group = b.group;
    }

    /**
     * Returns a builder with defaults: layout bhsd, backend {@code auto}, method ring, fp32 merging, zigzag
     * sharding, no group.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Enables context parallelism over a group, or disables it with {@code null} (seed:
     * {@code set_context_parallel_group}).
     *
     * @param group the group, or null for single-rank attention
     */
    public void setContextParallelGroup(ProcessGroup group) {
        this.group = group;
    }

    /**
     * Returns the context-parallel group, or null when disabled.
     *
     * @return the group or null
     */
    public ProcessGroup getContextParallelGroup() {
        return group;
    }

    /**
     * Returns the layout of q, k, v and the output.
     *
     * @return the layout
     */
    public QkvLayout getLayout() {
        return layout;
    }

    /**
     * Returns the local attention backend's name.
     *
     * @return the backend name
     */
    public String getBackend() {
        return backend;
    }

    /**
     * Returns the context-parallel method.
     *
     * @return ring or ulysses
     */
    public Method getMethod() {
        return method;
    }

    /**
     * Returns whether ring attention keeps its running outputs in fp32.
     *
     * @return true for fp32 merging
     */
    public boolean isConvertToFp32() {
        return convertToFp32;
    }

    /**
     * Returns how the inputs are expected to be sharded.
     *
     * @return the sharding
     */
    public SequenceSharding getSharding() {
        return sharding;
    }

    /**
     * Checks, without communicating, that this module's method can split {@code queryHeads} query heads over
     * {@code world} ranks: the ring takes any count, Ulysses needs {@code queryHeads % world == 0}. A caller that
     * runs many forwards (a model's layers) calls it once before its first collective, so a configuration that
     * cannot run fails on every rank alike instead of part-way through.
     *
     * @param queryHeads Hq
     * @param world the number of ranks
     * @throws IllegalArgumentException naming the world sizes that work with {@code queryHeads} heads
     */
    public void checkHeads(int queryHeads, int world) {
        Checks.checkAtLeast("queryHeads", queryHeads, 1, "query heads");
        Checks.checkAtLeast("world", world, 1, "number of ranks");
        if (method == Method.ULYSSES && world > 1) {
            UlyssesAttention.checkHeads(queryHeads, world);
        }
    }

    /**
     * Computes attention for this rank's query shard over the keys of every rank. Every rank of the group must
     * call it with the same spec, its own shards cut with {@link #getSharding()} (see
     * {@link ContextParallel#shard}), and the same batch, head and dim sizes.
     *
     * @param q this rank's queries: bhsd [B, Hq, Lq_r, D] or bshd [B, Lq_r, Hq, D]
     * @param k this rank's keys [B, Hkv, Lk_r, D] / [B, Lk_r, Hkv, D]
     * @param v this rank's values [B, Hkv, Lk_r, Dv] / [B, Lk_r, Hkv, Dv]
     * @param spec what to compute, positions of the full sequence (causal is bottom-right aligned over the full
     *     lengths); its layout is ignored, this module's layout applies
     * @return this rank's output in the layout ([B, Hq, Lq_r, Dv] / [B, Lq_r, Hq, Dv]) and, when the spec asks,
     *     its LSE, the output's shape without Dv ([B, Hq, Lq_r] / [B, Lq_r, Hq]; fp32, natural log)
     * @throws IllegalArgumentException for bad inputs, naming the argument and the allowed values
     * @throws ProcessGroupException when a peer fails or a wait times out
     */
    public AttentionOutput forward(NDArray q, NDArray k, NDArray v, AttentionSpec spec) {
        Objects.requireNonNull(spec, "spec");
        AttentionSpec s = spec.getLayout() == layout ? spec : spec.toBuilder().optLayout(layout).build();
        ProcessGroup g = group;
        if (g == null || g.size() == 1) {
            return Attention.forward(q, k, v, s, backend);
        }
        // Every local check before the first collective, so a bad input fails here and not as a peer timeout.
        AttentionProblem problem = AttentionProblem.builder(q, k, v, s).build();
        if (usesDeviceKernels(g, q)) {
            return forwardNDArraysOnDevice((NcclProcessGroup) g, q, k, v, s);
        }
        if (method == Method.ULYSSES) {
            UlyssesAttention.checkHeads(problem.getQueryHeads(), g.size());
            return UlyssesAttention.forward(g, q, k, v, s, backend, sharding);
        }
        return RingAttention.forward(g, q, k, v, s, backend, convertToFp32, sharding);
    }

    /**
     * Computes this rank's output on raw device memory with the flash kernels: the ring or Ulysses over an
     * {@link NcclProcessGroup}, or plain flash attention without a group (or with one rank). Every rank calls it
     * with the same spec and its own shards, cut with {@link #getSharding()}.
     *
     * @param q this rank's queries in this module's layout: bshd [B, Lq_r, Hq, D] or bhsd [B, Hq, Lq_r, D],
     *     fp16/bf16, dense contiguous, on the group's GPU
     * @param k this rank's keys [B, Lk_r, Hkv, D] / [B, Hkv, Lk_r, D]
     * @param v this rank's values, the shape of k
     * @param out the output, the shape and dtype of q
     * @param lse fp32, q's shape without D ([B, Lq_r, Hq] / [B, Hq, Lq_r]), natural log, or null
     * @param spec what to compute over the full sequence; its layout is ignored, this module's applies
     * @throws IllegalArgumentException for bad inputs, or a group that is not NCCL
     * @throws ProcessGroupException when a peer fails or a wait times out
     */
    public void forward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, DeviceTensor lse,
            AttentionSpec spec) {
        Objects.requireNonNull(spec, "spec");
        AttentionSpec s = spec.getLayout() == layout ? spec : spec.toBuilder().optLayout(layout).build();
        ProcessGroup g = group;
        if (g == null || g.size() == 1) {
            FlashAttention.builder().setQuery(q).setKey(k).setValue(v).setOutput(out).optLse(lse).setSpec(s).build()
                    .run(singleRankArguments(q.getDevice()));
            return;
        }
        if (!(g instanceof NcclProcessGroup)) {
            throw new IllegalArgumentException("context-parallel attention on device memory needs an NcclProcessGroup"
                    + ", got " + g.backendName() + " (" + g + "); use the NDArray forward with other groups");
        }
        NcclProcessGroup nccl = (NcclProcessGroup) g;
        if (method == Method.ULYSSES) {
            ulyssesFor(nccl).forward(q, k, v, out, lse, s);
        } else {
            ringFor(nccl).forward(q, k, v, out, lse, s);
        }
    }

    // GPU NDArrays on an NCCL group with the flash (or auto) backend run the device kernels directly.
    private boolean usesDeviceKernels(ProcessGroup g, NDArray q) {
        if (!(g instanceof NcclProcessGroup) || !q.getDevice().isGpu()) {
            return false;
        }
        if (FLASH.equals(backend)) {
            return true;
        }
        return AttentionBackends.AUTO.equals(backend) && q.getDataType() == DataType.FLOAT16;
    }

    private AttentionOutput forwardNDArraysOnDevice(NcclProcessGroup g, NDArray q, NDArray k, NDArray v,
            AttentionSpec s) {
        NDManager manager = q.getManager();
        NDArray out = manager.create(q.getShape(), q.getDataType(), q.getDevice());
        NDArray lse = s.isReturnLse()
                ? manager.create(q.getShape().slice(0, 3), DataType.FLOAT32, q.getDevice()) // q without D
                : null;
        try {
            forward(DeviceTensor.fromNDArray(q), DeviceTensor.fromNDArray(k), DeviceTensor.fromNDArray(v),
                    DeviceTensor.fromNDArray(out), lse == null ? null : DeviceTensor.fromNDArray(lse), s);
        } catch (RuntimeException e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
        return new AttentionOutput(out, lse);
    }

    // The kernel arguments (ALiBi slopes) of the single-rank device path, kept until close().
    private synchronized DeviceWorkspace singleRankArguments(int device) {
        if (singleRank == null || singleRank.getDevice() != device) {
            if (singleRank != null) {
                singleRank.close();
            }
            singleRank = new DeviceWorkspace(device);
        }
        return singleRank;
    }

    private synchronized DeviceRingAttention ringFor(NcclProcessGroup g) {
        rebind(g);
        if (deviceRing == null) {
            deviceRing = new DeviceRingAttention(g, sharding, convertToFp32);
        }
        return deviceRing;
    }

    private synchronized DeviceUlyssesAttention ulyssesFor(NcclProcessGroup g) {
        rebind(g);
        if (deviceUlysses == null) {
            deviceUlysses = new DeviceUlyssesAttention(g, sharding);
        }
        return deviceUlysses;
    }

    private void rebind(NcclProcessGroup g) {
        if (deviceGroup != g) {
            close();
            deviceGroup = g;
        }
    }

    /** Frees the device scratch of the GPU path (if any); the group is not closed. */
    @Override
    public synchronized void close() {
        if (deviceRing != null) {
            deviceRing.close();
            deviceRing = null;
        }
        if (deviceUlysses != null) {
            deviceUlysses.close();
            deviceUlysses = null;
        }
        if (singleRank != null) {
            singleRank.close();
            singleRank = null;
        }
        deviceGroup = null;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        ProcessGroup g = group;
        return "ContextParallelAttention{method=" + method + ", backend=" + backend + ", layout="
                + layout.name().toLowerCase(Locale.ROOT) + ", sharding=" + sharding.name().toLowerCase(Locale.ROOT)
                + ", convertToFp32=" + convertToFp32 + ", group=" + (g == null ? "none" : g.backendName() + " rank "
                + g.rank() + "/" + g.size()) + "}";
    }

    /** Builds a {@link ContextParallelAttention}; every option is optional. */
    public static final class Builder {
        private QkvLayout layout = QkvLayout.BHSD;
        private String backend = AttentionBackends.AUTO;
        private Method method = Method.RING;
        private boolean convertToFp32 = true;
        private SequenceSharding sharding = SequenceSharding.ZIGZAG;
        private ProcessGroup group;

        private Builder() {}

        /**
         * Sets the layout of q, k, v and the output (seed: {@code qkv_format}; default bhsd).
         *
         * @param layout the layout
         * @return this builder
         */
        public Builder optLayout(QkvLayout layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
            return this;
        }

        /**
         * Sets the layout by name.
         *
         * @param layout {@code "bhsd"} or {@code "bshd"}
         * @return this builder
         */
        public Builder optLayout(String layout) {
            return optLayout(QkvLayout.of(layout));
        }

        /**
         * Sets the local attention backend (default {@code auto}).
         *
         * @param backend a name from {@link AttentionBackends#names()}
         * @return this builder
         * @throws IllegalArgumentException naming the known backends
         */
        public Builder optBackend(String backend) {
            Objects.requireNonNull(backend, "backend");
            if (!AttentionBackends.names().contains(backend)) {
                throw new IllegalArgumentException("unknown attention backend '" + backend + "'; known: "
                        + AttentionBackends.names());
            }
            this.backend = backend;
            return this;
        }

        /**
         * Sets the context-parallel method (default ring).
         *
         * @param method ring or ulysses
         * @return this builder
         */
        public Builder optMethod(Method method) {
            this.method = Objects.requireNonNull(method, "method");
            return this;
        }

        /**
         * Sets whether ring attention keeps its running outputs in fp32 (default true); false keeps them in the
         * input dtype (less memory, one rounding per step). Ulysses has no running outputs.
         *
         * @param convertToFp32 true for fp32 merging
         * @return this builder
         */
        public Builder optConvertToFp32(boolean convertToFp32) {
            this.convertToFp32 = convertToFp32;
            return this;
        }

        /**
         * Sets how the caller shards q, k and v (default zigzag).
         *
         * @param sharding the sharding
         * @return this builder
         */
        public Builder optSharding(SequenceSharding sharding) {
            this.sharding = Objects.requireNonNull(sharding, "sharding");
            return this;
        }

        /**
         * Sets the initial context-parallel group (default none).
         *
         * @param group the group or null
         * @return this builder
         */
        public Builder optContextParallelGroup(ProcessGroup group) {
            this.group = group;
            return this;
        }

        /**
         * Builds the module.
         *
         * @return the module
         */
        public ContextParallelAttention build() {
            return new ContextParallelAttention(this);
        }
    }
}
