package org.flashdjl.ops.attention;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;

import java.util.Objects;

/**
 * One validated attention call: the inputs, the {@link AttentionSpec}, the derived sizes and the block position.
 *
 * <p>Dense calls take q [batch, Lq, Hq, D] / [batch, Hq, Lq, D] (bshd / bhsd) and k, v with Hkv heads and Lk
 * keys; varlen calls take packed q [totalQ, Hq, D], k and v [totalK, Hkv, D] plus {@code cuSeqlensQ/K} int32
 * offsets [batch + 1]. Every check runs in {@link Builder#build()}, before any backend sees the inputs, and
 * names the bad argument and the allowed values.
 */
public final class AttentionProblem {

    private final NDArray query; // bhsd/bshd [B, Hq|Lq, Lq|Hq, D] or varlen [totalQ, Hq, D]
    private final NDArray key; // like query with Hkv heads, Lk keys
    private final NDArray value; // like key, last dim Dv
    private final AttentionSpec spec;
    private final int[] cuSeqlensQ; // [B + 1] host copy, null when dense
    private final int[] cuSeqlensK; // [B + 1] host copy, null when dense
    private final long queryStart; // position of query row 0 (MaskRule)
    private final long keyStart; // index of key 0 (MaskRule)
    private final int[] keyPadding; // [B] keys hidden at the front of each batch entry, null = none
    private final int batch;
    private final int queryHeads;
    private final int kvHeads;
    private final long queryLength; // Lq (varlen: max over sequences)
    private final long keyLength; // Lk (varlen: max over sequences)
    private final int headDim;
    private final int valueDim;

    private AttentionProblem(Builder b) {
        this.query = b.query;
        this.key = b.key;
        this.value = b.value;
        this.spec = b.spec;
        this.cuSeqlensQ = b.cuQ;
        this.cuSeqlensK = b.cuK;
        this.batch = b.batch;
        this.queryHeads = b.hq;
        this.kvHeads = b.hkv;
        this.queryLength = b.lq;
        this.keyLength = b.lk;
        this.headDim = b.d;
        this.valueDim = b.dv;
        this.queryStart = b.queryStart != null ? b.queryStart : b.lk - b.lq;
        this.keyStart = b.keyStart != null ? b.keyStart : 0;
        this.keyPadding = b.keyPadding;
    }

    /**
     * Starts a dense problem.
     *
     * @param query q in the spec's layout
     * @param key k in the spec's layout
     * @param value v in the spec's layout
     * @param spec what to compute
     * @return a builder
     */
    public static Builder builder(NDArray query, NDArray key, NDArray value, AttentionSpec spec) {
        return new Builder(query, key, value, spec);
    }

    /** @return q as given */
    public NDArray getQuery() {
        return query;
    }

    /** @return k as given */
    public NDArray getKey() {
        return key;
    }

    /** @return v as given */
    public NDArray getValue() {
        return value;
    }

    /** @return the spec */
    public AttentionSpec getSpec() {
        return spec;
    }

    /** @return whether the inputs are packed varlen sequences */
    public boolean isVarlen() {
        return cuSeqlensQ != null;
    }

    /** @return a copy of the query offsets [batch + 1], or null when dense */
    public int[] getCuSeqlensQ() {
        return cuSeqlensQ == null ? null : cuSeqlensQ.clone();
    }

    /** @return a copy of the key offsets [batch + 1], or null when dense */
    public int[] getCuSeqlensK() {
        return cuSeqlensK == null ? null : cuSeqlensK.clone();
    }

    /** @return the position of query row 0 for the mask rule ({@code Lk - Lq} unless set) */
    public long getQueryStart() {
        return queryStart;
    }

    /** @return the index of key 0 for the mask rule (0 unless set) */
    public long getKeyStart() {
        return keyStart;
    }

    /**
     * Returns the keys hidden at the front of each batch entry ({@link Builder#optKeyPadding}).
     *
     * @return [B] counts, or null when no key is hidden this way
     */
    public int[] getKeyPadding() {
        return keyPadding == null ? null : keyPadding.clone();
    }

    /**
     * Returns which keys of a block no padding hides, per batch entry ({@link Builder#optKeyPadding}).
     *
     * @param manager where the mask goes
     * @param start the block's first key (local index)
     * @param length the block's key count
     * @return boolean [B, 1, 1, length] (broadcasts over heads and queries), or null when nothing is hidden
     */
    NDArray keyValid(NDManager manager, long start, long length) {
        if (keyPadding == null) {
            return null;
        }
        boolean[] valid = new boolean[Math.toIntExact(batch * length)];
        boolean any = false;
        for (int b = 0; b < batch; b++) {
            for (long j = 0; j < length; j++) {
                boolean ok = start + j >= keyPadding[b];
                valid[(int) (b * length + j)] = ok;
                any |= !ok;
            }
        }
        return any ? manager.create(valid, new Shape(batch, 1, 1, length)) : null;
    }

    /** @return the batch size (varlen: number of sequences) */
    public int getBatch() {
        return batch;
    }

    /** @return Hq */
    public int getQueryHeads() {
        return queryHeads;
    }

    /** @return Hkv */
    public int getKvHeads() {
        return kvHeads;
    }

    /** @return Hq / Hkv */
    public int getGroupSize() {
        return queryHeads / kvHeads;
    }

    /** @return Lq (varlen: the longest query sequence) */
    public long getQueryLength() {
        return queryLength;
    }

    /** @return Lk (varlen: the longest key sequence) */
    public long getKeyLength() {
        return keyLength;
    }

    /** @return D of q and k */
    public int getHeadDim() {
        return headDim;
    }

    /** @return D of v and the output */
    public int getValueDim() {
        return valueDim;
    }

    /** @return the softmax scale in effect */
    public float getScale() {
        return spec.scaleFor(headDim);
    }

    /** @return the inputs' dtype (also the output's) */
    public DataType getDataType() {
        return query.getDataType();
    }

    /** @return the inputs' device */
    public Device getDevice() {
        return query.getDevice();
    }

    /** @return the shape of the output */
    public Shape outputShape() {
        if (isVarlen()) {
            return new Shape(query.getShape().get(0), queryHeads, valueDim);
        }
        return spec.getLayout() == QkvLayout.BHSD
                ? new Shape(batch, queryHeads, queryLength, valueDim)
                : new Shape(batch, queryLength, queryHeads, valueDim);
    }

    /**
     * Returns the shape of the LSE: the output's shape without its last axis (FlashInfer's rule), so an output and
     * its LSE slice, shard and merge along the same axes.
     *
     * @return bhsd [batch, Hq, Lq], bshd [batch, Lq, Hq], varlen [totalQ, Hq]
     */
    public Shape lseShape() {
        Shape out = outputShape();
        return out.slice(0, out.dimension() - 1);
    }

    /** Validates inputs and builds an {@link AttentionProblem}. */
    public static final class Builder {
        private final NDArray query;
        private final NDArray key;
        private final NDArray value;
        private final AttentionSpec spec;
        private NDArray cuSeqlensQArray;
        private NDArray cuSeqlensKArray;
        private Long queryStart;
        private Long keyStart;
        private int[] keyPadding;
        private int[] cuQ;
        private int[] cuK;
        private int batch;
        private int hq;
        private int hkv;
        private long lq;
        private long lk;
        private int d;
        private int dv;

        private Builder(NDArray query, NDArray key, NDArray value, AttentionSpec spec) {
            this.query = Objects.requireNonNull(query, "query");
            this.key = Objects.requireNonNull(key, "key");
            this.value = Objects.requireNonNull(value, "value");
            this.spec = Objects.requireNonNull(spec, "spec");
        }

        /**
         * Makes this a varlen call over packed sequences.
         *
         * @param cuSeqlensQ int32 [batch + 1] query offsets, starting at 0, non-decreasing, ending at totalQ
         * @param cuSeqlensK int32 [batch + 1] key offsets, likewise ending at totalK
         * @return this builder
         */
        public Builder optVarlen(NDArray cuSeqlensQ, NDArray cuSeqlensK) {
            this.cuSeqlensQArray = Objects.requireNonNull(cuSeqlensQ, "cuSeqlensQ");
            this.cuSeqlensKArray = Objects.requireNonNull(cuSeqlensK, "cuSeqlensK");
            return this;
        }

        /**
         * Places this call's block inside a longer sequence for the mask rule: query row 0 sits at position
         * {@code queryStart} and key 0 is key {@code keyStart} (default: {@code Lk - Lq} and 0). Ring attention,
         * cascades and blockwise backends use this; see {@link MaskRule}.
         *
         * @param queryStart position of query row 0
         * @param keyStart index of key 0, {@code >= 0}
         * @return this builder
         */
        public Builder optPositions(long queryStart, long keyStart) {
            Checks.checkAtLeast("keyStart", keyStart, 0, "index of the block's first key");
            this.queryStart = queryStart;
            this.keyStart = keyStart;
            return this;
        }

        /**
         * Hides the first {@code keyPadding[b]} keys of batch entry {@code b} from all its queries: they contribute
         * nothing, whatever their bits (dense calls only). With batch entries of different key lengths right-aligned
         * in one tensor (entry b's keys at {@code [Lk - len_b, Lk)}), bottom-right causality, windows and ALiBi see
         * each entry's own geometry, since they depend only on query position minus key index (FlashAttention's
         * {@code seqused_k}, left-padded); sinks count key indices from 0 of the padded tensor.
         *
         * @param keyPadding [B] counts, each in {@code [0, Lk]}
         * @return this builder
         */
        public Builder optKeyPadding(int[] keyPadding) {
            this.keyPadding = Objects.requireNonNull(keyPadding, "keyPadding").clone();
            return this;
        }

        /**
         * Validates everything and builds the problem.
         *
         * @return the problem
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         */
        public AttentionProblem build() {
            Checks.checkDataType("query", query, Checks.FLOAT_TYPES);
            Checks.checkDataType("key", key, Checks.FLOAT_TYPES);
            Checks.checkDataType("value", value, Checks.FLOAT_TYPES);
            Checks.checkSameDataType("query", query, "key", key);
            Checks.checkSameDataType("query", query, "value", value);
            Checks.checkSameDevice("query", query, "key", key);
            Checks.checkSameDevice("query", query, "value", value);
            boolean varlen = cuSeqlensQArray != null;
            Shape qs = query.getShape();
            Shape ks = key.getShape();
            Shape vs = value.getShape();
            if (varlen) {
                String axes = "[totalTokens, heads, dim] (varlen)";
                Checks.checkRank("query", query, 3, axes);
                Checks.checkRank("key", key, 3, axes);
                Checks.checkRank("value", value, 3, axes);
                cuQ = offsets("cuSeqlensQ", cuSeqlensQArray, qs.get(0), "query", -1);
                cuK = offsets("cuSeqlensK", cuSeqlensKArray, ks.get(0), "key", cuQ.length);
                batch = cuQ.length - 1;
                hq = intDim("query heads", qs.get(1));
                hkv = intDim("key heads", ks.get(1));
                lq = maxLength(cuQ);
                lk = maxLength(cuK);
                if (vs.get(0) != ks.get(0) || vs.get(1) != ks.get(1)) {
                    throw new IllegalArgumentException("value shape " + vs + " must match key shape " + ks
                            + " except the last dim (varlen [totalK, Hkv, Dv])");
                }
            } else {
                QkvLayout layout = spec.getLayout();
                Checks.checkRank("query", query, 4, layout.axes());
                Checks.checkRank("key", key, 4, layout.axes());
                Checks.checkRank("value", value, 4, layout.axes());
                batch = intDim("batch", qs.get(0));
                hq = intDim("query heads", qs.get(layout.headAxis()));
                hkv = intDim("key heads", ks.get(layout.headAxis()));
                lq = qs.get(layout.seqAxis());
                lk = ks.get(layout.seqAxis());
                if (ks.get(0) != batch || vs.get(0) != batch) {
                    throw new IllegalArgumentException("batch sizes differ: query " + qs + ", key " + ks
                            + ", value " + vs + " (layout " + layout.axes() + ")");
                }
                if (vs.get(layout.headAxis()) != hkv || vs.get(layout.seqAxis()) != lk) {
                    throw new IllegalArgumentException("value shape " + vs + " must match key shape " + ks
                            + " except the last dim (layout " + layout.axes() + ")");
                }
            }
            d = intDim("head dim", qs.get(qs.dimension() - 1));
            dv = intDim("value head dim", vs.get(vs.dimension() - 1));
            if (ks.get(ks.dimension() - 1) != d) {
                throw new IllegalArgumentException("key head dim " + ks.get(ks.dimension() - 1)
                        + " must equal query head dim " + d + " (query " + qs + ", key " + ks + ")");
            }
            if (hq == 0 || hkv == 0 || d == 0) {
                throw new IllegalArgumentException("heads and head dim must be > 0: query " + qs + ", key " + ks);
            }
            if (hq % hkv != 0) {
                throw new IllegalArgumentException("query heads (" + hq + ") must be a multiple of key/value heads ("
                        + hkv + ") for GQA/MQA; allowed key/value head counts: divisors of " + hq);
            }
            if (spec.hasAlibi() && spec.getAlibiSlopes().length != hq) {
                throw new IllegalArgumentException("alibiSlopes has " + spec.getAlibiSlopes().length
                        + " slopes; it needs one per query head (" + hq + ")");
            }
            if (varlen && (queryStart != null)) {
                throw new IllegalArgumentException(
                        "optPositions is for dense blocks; varlen sequences are each bottom-right aligned");
            }
            if (keyPadding != null) {
                if (varlen) {
                    throw new IllegalArgumentException("optKeyPadding is for dense calls; varlen sequences have"
                            + " their own key lengths already");
                }
                if (keyPadding.length != batch) {
                    throw new IllegalArgumentException("keyPadding has " + keyPadding.length + " entries; it needs"
                            + " one per batch entry (" + batch + ")");
                }
                for (int b = 0; b < batch; b++) {
                    if (keyPadding[b] < 0 || keyPadding[b] > lk) {
                        throw new IllegalArgumentException("keyPadding[" + b + "] = " + keyPadding[b]
                                + " is outside [0, Lk = " + lk + "]");
                    }
                }
            }
            return new AttentionProblem(this);
        }

        private static int intDim(String name, long size) {
            if (size > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + " = " + size + " exceeds " + Integer.MAX_VALUE);
            }
            return (int) size;
        }

        private static long maxLength(int[] offsets) {
            long max = 0;
            for (int i = 1; i < offsets.length; i++) {
                max = Math.max(max, offsets[i] - offsets[i - 1]);
            }
            return max;
        }

        private int[] offsets(String name, NDArray array, long total, String of, int expectedLength) {
            if (array.getDataType() != DataType.INT32) {
                throw new IllegalArgumentException(name + " must be int32, got " + array.getDataType());
            }
            if (array.getShape().dimension() != 1 || array.getShape().get(0) < 2) {
                throw new IllegalArgumentException(name + " must be a 1-d offsets array [batch + 1] with batch >= 1,"
                        + " got shape " + array.getShape());
            }
            int[] offsets = array.toIntArray();
            if (expectedLength >= 0 && offsets.length != expectedLength) {
                throw new IllegalArgumentException(name + " has " + offsets.length
                        + " entries but cuSeqlensQ has " + expectedLength + "; both are [batch + 1]");
            }
            if (offsets[0] != 0) {
                throw new IllegalArgumentException(name + " must start at 0, got " + Checks.list(offsets));
            }
            for (int i = 1; i < offsets.length; i++) {
                if (offsets[i] < offsets[i - 1]) {
                    throw new IllegalArgumentException(name + " must be non-decreasing, got " + Checks.list(offsets)
                            + " (decreases at index " + i + ")");
                }
            }
            if (offsets[offsets.length - 1] != total) {
                throw new IllegalArgumentException(name + " must end at the number of packed " + of + " tokens ("
                        + total + "), got " + Checks.list(offsets));
            }
            return offsets;
        }
    }
}
