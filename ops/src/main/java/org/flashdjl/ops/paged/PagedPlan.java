package org.flashdjl.ops.paged;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Objects;

/**
 * One step's paged attention over a batch of sequences: the page table, how many new query tokens each sequence
 * has, the head counts, and the backend's auxiliary data built once ({@link PagedAttentionBackend#prepare}) and
 * reused by every layer's {@link #forward}. FlashInfer's {@code plan} / {@code run} (its cascade wrappers'
 * {@code begin_forward} / {@code forward} / {@code end_forward}); {@link #close()} is {@code end_forward}.
 *
 * <p>Semantics (docs/SEMANTICS.md, one definition): sequence {@code b} has {@code Lk_b} cached tokens and
 * {@code Lq_b = qoIndptr[b+1] - qoIndptr[b]} queries, the <em>last</em> {@code Lq_b} tokens of the sequence
 * (already appended to the cache). Its output rows equal {@link org.flashdjl.ops.attention.Attention} of those
 * queries over the sequence's gathered keys with the same {@link AttentionSpec}, bottom-right aligned: query
 * {@code i} sits at position {@code keyOffset + Lk_b - Lq_b + i}, key {@code j} is key {@code keyOffset + j}
 * ({@code keyOffset} is 0 except for a cascade's suffix, which starts after the shared prefix).
 *
 * <p>Layouts: queries are packed [totalQ, Hq, D] (decode: [B, Hq, D], one row per sequence), pages
 * [numPages, pageSize, Hkv, D] (NHD), output [totalQ, Hq, Dv] in the query's dtype, LSE [totalQ, Hq] fp32 natural
 * log (FlashInfer's layout: {@link org.flashdjl.ops.cascade.MergeState} pairs the output with it directly). The
 * spec's {@link AttentionSpec#getLayout() layout} is ignored.
 *
 * <pre>{@code
 * try (PagedPlan plan = PagedPlan.builder(cache.pageTable(ids)).setQueryHeads(32).setKvHeads(8).setHeadDim(128)
 *         .build()) {                                                         // once per step
 *     for (int layer = 0; layer < layers; layer++) {
 *         AttentionOutput o = plan.forward(q[layer], cache.getKeyPages(layer), cache.getValuePages(layer), spec);
 *     }
 * }
 * }</pre>
 */
public final class PagedPlan implements AutoCloseable {

    private final PageTable table;
    private final int[] qoIndptr; // [B + 1] query row offsets
    private final int queryHeads;
    private final int kvHeads;
    private final int headDim;
    private final Device device;
    private final DataType dataType;
    private final String denseBackend; // what the gather backend runs on each sequence's gathered keys
    private final int minKeyOffset; // max_b (Lq_b - Lk_b), at least 0
    private final NDManager manager; // owns the plan data's arrays
    private final PagedAttentionBackend backend;
    private final PagedAttentionBackend.PlanData planData;
    private volatile boolean closed;

    private PagedPlan(Builder b) {
        this.table = b.table;
        this.qoIndptr = b.qoIndptr;
        this.queryHeads = b.queryHeads;
        this.kvHeads = b.kvHeads;
        this.headDim = b.headDim;
        this.device = b.device;
        this.dataType = b.dataType;
        this.denseBackend = b.denseBackend;
        int min = 0;
        for (int i = 0; i < table.getBatchSize(); i++) {
            min = Math.max(min, getQueryLength(i) - table.getSeqLen(i));
        }
        this.minKeyOffset = min;
        this.backend = PagedAttentionBackends.select(b.backend, this);
        this.manager = NDManager.newBaseManager(device);
        PagedAttentionBackend.PlanData ws;
        try {
            ws = backend.prepare(this, manager);
            OpScope.keepAll(manager); // the plan data lives until close(), whatever scope the plan is built in
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
        this.planData = ws;
    }

    /**
     * Starts a plan over a page table.
     *
     * @param table the sequences' pages
     * @return a builder
     */
    public static Builder builder(PageTable table) {
        return new Builder(table);
    }

    /**
     * Runs one layer: the queries of every sequence against its pages, bottom-right aligned.
     *
     * @param q queries [totalQ, Hq, D] (decode: [B, Hq, D])
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param spec what to compute (its layout is ignored)
     * @return output [totalQ, Hq, Dv] and, when the spec asks, LSE [totalQ, Hq] fp32
     */
    public AttentionOutput forward(NDArray q, NDArray kPages, NDArray vPages, AttentionSpec spec) {
        return forward(q, kPages, vPages, spec, 0);
    }

    /**
     * Runs one layer with the pages' keys placed after {@code keyOffset} earlier keys (a cascade's suffix).
     *
     * @param q queries [totalQ, Hq, D]
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param spec what to compute (its layout is ignored)
     * @param keyOffset global index of each sequence's first paged key ({@code >= 0})
     * @return output [totalQ, Hq, Dv] and, when the spec asks, LSE [totalQ, Hq] fp32
     */
    public AttentionOutput forward(NDArray q, NDArray kPages, NDArray vPages, AttentionSpec spec, long keyOffset) {
        PagedAttentionProblem problem = new PagedAttentionProblem(this, q, kPages, vPages, spec, keyOffset);
        String why = backend.unsupportedReason(problem);
        if (why != null) {
            throw new UnsupportedOperationException("paged attention backend '" + backend.getName()
                    + "' cannot run this call: " + why);
        }
        return backend.forward(problem);
    }

    /**
     * Returns the page table.
     *
     * @return the table
     */
    public PageTable getPageTable() {
        return table;
    }

    /**
     * Returns the number of sequences.
     *
     * @return B
     */
    public int getBatchSize() {
        return table.getBatchSize();
    }

    /**
     * Returns the query row offsets.
     *
     * @return a copy of qoIndptr [B + 1]
     */
    public int[] getQoIndptr() {
        return qoIndptr.clone();
    }

    /**
     * Returns the number of query tokens of a sequence.
     *
     * @param b the sequence's row
     * @return {@code qoIndptr[b + 1] - qoIndptr[b]}
     */
    public int getQueryLength(int b) {
        return qoIndptr[b + 1] - qoIndptr[b];
    }

    /**
     * Returns the number of packed query rows.
     *
     * @return totalQ = {@code qoIndptr[B]}
     */
    public int getTotalQueries() {
        return qoIndptr[qoIndptr.length - 1];
    }

    /**
     * Returns whether every sequence has exactly one query token (decode).
     *
     * @return true for a decode plan
     */
    public boolean isDecode() {
        for (int b = 0; b < getBatchSize(); b++) {
            if (getQueryLength(b) != 1) {
                return false;
            }
        }
        return true;
    }

    /**
     * Returns the number of query heads.
     *
     * @return Hq
     */
    public int getQueryHeads() {
        return queryHeads;
    }

    /**
     * Returns the number of key/value heads.
     *
     * @return Hkv
     */
    public int getKvHeads() {
        return kvHeads;
    }

    /**
     * Returns the query/key head dim.
     *
     * @return D
     */
    public int getHeadDim() {
        return headDim;
    }

    /**
     * Returns the dtype of the queries and pages the plan serves, when its builder was told
     * ({@link Builder#optDataType}).
     *
     * @return the dtype, or null when any float dtype is accepted per call
     */
    public DataType getDataType() {
        return dataType;
    }

    /**
     * Returns the device the plan's auxiliary data lives on.
     *
     * @return the device
     */
    public Device getDevice() {
        return device;
    }

    /**
     * Returns the dense attention backend that backends computing paged attention through the contiguous operator
     * (the {@code gather} backend) run.
     *
     * @return a name from {@link org.flashdjl.ops.attention.AttentionBackends#names()}
     */
    public String getDenseBackend() {
        return denseBackend;
    }

    /**
     * Returns the smallest {@code keyOffset} the plan accepts: a sequence with more queries than cached keys needs
     * the missing keys before its pages (a cascade's shared prefix).
     *
     * @return {@code max(0, max_b (Lq_b - Lk_b))}
     */
    public int getMinKeyOffset() {
        return minKeyOffset;
    }

    /**
     * Returns the backend the plan was prepared for.
     *
     * @return the backend
     */
    public PagedAttentionBackend getBackend() {
        return backend;
    }

    /**
     * Returns the backend's auxiliary data, the same object for every {@link #forward}.
     *
     * @return the plan data
     * @throws IllegalStateException once the plan is closed
     */
    public PagedAttentionBackend.PlanData getPlanData() {
        checkOpen();
        return planData;
    }

    /**
     * Returns whether {@link #close()} ran.
     *
     * @return true when closed
     */
    public boolean isClosed() {
        return closed;
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException("paged plan is closed (end of step): build a new plan for the next"
                    + " step's page table");
        }
    }

    /** Frees the auxiliary data; later {@link #forward} calls throw {@link IllegalStateException}. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                planData.close();
            } finally {
                manager.close();
            }
        }
    }

    /** Builds a {@link PagedPlan}. */
    public static final class Builder {
        private final PageTable table;
        private int[] qoIndptr;
        private int queryHeads;
        private int kvHeads;
        private int headDim;
        private Device device;
        private DataType dataType;
        private String backend = PagedAttentionBackends.AUTO;
        private String denseBackend = AttentionBackends.AUTO;

        private Builder(PageTable table) {
            this.table = Objects.requireNonNull(table, "table");
        }

        /**
         * Sets the query row offsets (prefill / append): sequence b's queries are rows
         * {@code qoIndptr[b] .. qoIndptr[b+1]}. Default: one query per sequence (decode).
         *
         * @param qoIndptr [B + 1] offsets, starting at 0, non-decreasing
         * @return this builder
         */
        public Builder optQoIndptr(int[] qoIndptr) {
            this.qoIndptr = Objects.requireNonNull(qoIndptr, "qoIndptr").clone();
            return this;
        }

        /**
         * Sets the query row offsets from an int32 NDArray (copied to the host once).
         *
         * @param qoIndptr int32 [B + 1]
         * @return this builder
         */
        public Builder optQoIndptr(NDArray qoIndptr) {
            if (qoIndptr.getDataType() != DataType.INT32) {
                throw new IllegalArgumentException("qoIndptr must be int32, got " + qoIndptr.getDataType());
            }
            Checks.checkRank("qoIndptr", qoIndptr, 1, "[batch + 1]");
            return optQoIndptr(qoIndptr.toIntArray());
        }

        /**
         * Sets the number of query heads.
         *
         * @param queryHeads Hq, a multiple of Hkv
         * @return this builder
         */
        public Builder setQueryHeads(int queryHeads) {
            this.queryHeads = queryHeads;
            return this;
        }

        /**
         * Sets the number of key/value heads.
         *
         * @param kvHeads Hkv
         * @return this builder
         */
        public Builder setKvHeads(int kvHeads) {
            this.kvHeads = kvHeads;
            return this;
        }

        /**
         * Sets the query/key head dim.
         *
         * @param headDim D
         * @return this builder
         */
        public Builder setHeadDim(int headDim) {
            this.headDim = headDim;
            return this;
        }

        /**
         * Sets the device of the pools and queries (default: the engine's default device).
         *
         * @param device the device
         * @return this builder
         */
        public Builder optDevice(Device device) {
            this.device = device;
            return this;
        }

        /**
         * Sets the dtype of the queries and pages the plan will serve (default: not stated, checked per call).
         * Stating it lets {@code auto} pick a backend that runs it: a GPU plan for float32 pages goes to
         * {@code gather} instead of a kernel that runs float16 only; calls with another dtype are refused.
         *
         * @param dataType float32, float16 or bfloat16
         * @return this builder
         */
        public Builder optDataType(DataType dataType) {
            this.dataType = Objects.requireNonNull(dataType, "dataType");
            return this;
        }

        /**
         * Sets the backend (default {@code auto}).
         *
         * @param backend a name from {@link PagedAttentionBackends#names()}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * Sets the dense attention backend that the {@code gather} backend runs on the gathered keys (default
         * {@code auto}); kernels that read the pages in place ignore it.
         *
         * @param denseBackend a name from {@link AttentionBackends#names()}
         * @return this builder
         */
        public Builder optDenseBackend(String denseBackend) {
            this.denseBackend = Objects.requireNonNull(denseBackend, "denseBackend");
            return this;
        }

        /**
         * Validates and prepares the plan (the backend builds its auxiliary data here, once).
         *
         * @return the plan
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         */
        public PagedPlan build() {
            int b = table.getBatchSize();
            if (qoIndptr == null) {
                qoIndptr = new int[b + 1];
                for (int i = 0; i <= b; i++) {
                    qoIndptr[i] = i;
                }
            }
            if (qoIndptr.length != b + 1) {
                throw new IllegalArgumentException("qoIndptr must have batch + 1 = " + (b + 1)
                        + " entries (the page table has " + b + " sequences), got " + qoIndptr.length);
            }
            if (qoIndptr[0] != 0) {
                throw new IllegalArgumentException("qoIndptr must start at 0, got " + Checks.list(qoIndptr));
            }
            for (int i = 1; i <= b; i++) {
                if (qoIndptr[i] < qoIndptr[i - 1]) {
                    throw new IllegalArgumentException("qoIndptr must be non-decreasing (monotone), got "
                            + Checks.list(qoIndptr) + " (decreases at index " + i + ")");
                }
            }
            Checks.checkAtLeast("queryHeads", queryHeads, 1, "set with setQueryHeads");
            Checks.checkAtLeast("kvHeads", kvHeads, 1, "set with setKvHeads");
            Checks.checkAtLeast("headDim", headDim, 1, "set with setHeadDim");
            if (queryHeads % kvHeads != 0) {
                throw new IllegalArgumentException("query heads (" + queryHeads
                        + ") must be a multiple of key/value heads (" + kvHeads
                        + ") for GQA/MQA; allowed key/value head counts: divisors of " + queryHeads);
            }
            if (device == null) {
                device = Engine.getInstance().defaultDevice();
            }
            if (!AttentionBackends.names().contains(denseBackend)) {
                throw new IllegalArgumentException("unknown dense attention backend '" + denseBackend + "' for the"
                        + " plan; known: " + AttentionBackends.names());
            }
            return new PagedPlan(this);
        }
    }
}
