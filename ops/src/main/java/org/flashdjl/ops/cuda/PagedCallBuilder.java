package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Objects;

/**
 * The operands every paged kernel call takes ({@link PagedDecodeKernel}, {@link PagedPrefillKernel}): queries, the
 * NHD key/value pools, the output, the optional LSE, the options, the key offset of the paged keys. {@code setX}
 * are required, {@code optX} optional; subclasses add their step workspace and {@code build()}.
 *
 * @param <B> the concrete builder, returned by every setter
 */
public abstract class PagedCallBuilder<B extends PagedCallBuilder<B>> {

    DeviceTensor q; // [rows, Hq, D]
    DeviceTensor k; // [numPages, pageSize, Hkv, D]
    DeviceTensor v; // [numPages, pageSize, Hkv, D]
    DeviceTensor o; // [rows, Hq, D]
    DeviceTensor lse; // fp32 [rows, Hq] or null
    AttentionSpec spec;
    long keyOffset;
    boolean synchronize;

    PagedCallBuilder() {}

    private B self() {
        @SuppressWarnings("unchecked")
        B b = (B) this;
        return b;
    }

    /**
     * Sets the queries.
     *
     * @param q fp16/bf16 [rows, Hq, D]: decode one row per sequence, prefill packed by the workspace's qoIndptr
     * @return this builder
     */
    public B setQuery(DeviceTensor q) {
        this.q = q;
        return self();
    }

    /**
     * Sets the key pool.
     *
     * @param k [numPages, pageSize, Hkv, D] (NHD), q's dtype
     * @return this builder
     */
    public B setKeyPages(DeviceTensor k) {
        this.k = k;
        return self();
    }

    /**
     * Sets the value pool.
     *
     * @param v the shape and strides of the key pool
     * @return this builder
     */
    public B setValuePages(DeviceTensor v) {
        this.v = v;
        return self();
    }

    /**
     * Sets the output.
     *
     * @param o [rows, Hq, D], q's dtype
     * @return this builder
     */
    public B setOutput(DeviceTensor o) {
        this.o = o;
        return self();
    }

    /**
     * Asks for the LSE.
     *
     * @param lse fp32 [rows, Hq] with head stride 1, or null
     * @return this builder
     */
    public B optLse(DeviceTensor lse) {
        this.lse = lse;
        return self();
    }

    /**
     * Sets the options (layout and returnLse are ignored: {@link #optLse} decides).
     *
     * @param spec the spec
     * @return this builder
     */
    public B setSpec(AttentionSpec spec) {
        this.spec = spec;
        return self();
    }

    /**
     * Places the paged keys after {@code keyOffset} earlier keys (a cascade's suffix; default 0).
     *
     * @param keyOffset the global index of each sequence's first paged key, {@code >= 0}
     * @return this builder
     */
    public B optKeyOffset(long keyOffset) {
        this.keyOffset = keyOffset;
        return self();
    }

    /**
     * Waits for the kernels after the launch and reports asynchronous errors there (tests).
     *
     * @param synchronize true to synchronize after the launches
     * @return this builder
     */
    public B optSynchronize(boolean synchronize) {
        this.synchronize = synchronize;
        return self();
    }

    /**
     * Checks that every required operand was set.
     *
     * @param workspace the subclass's workspace
     */
    void requireOperands(Object workspace) {
        Objects.requireNonNull(q, "query");
        Objects.requireNonNull(k, "keyPages");
        Objects.requireNonNull(v, "valuePages");
        Objects.requireNonNull(o, "output");
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(workspace, "workspace");
    }
}
