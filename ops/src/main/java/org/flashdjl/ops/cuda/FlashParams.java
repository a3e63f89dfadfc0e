package org.flashdjl.ops.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The Java image of {@code struct FlashFwdParams} ({@code ops/src/main/cuda/flash_params.h}): the one argument,
 * passed by value, of every flash-attention forward kernel. Little-endian, natural C alignment, fields in the
 * header's order; {@link #toBytes()} gives the bytes that {@code cuLaunchKernel} copies as the argument.
 */
public final class FlashParams {

    /** The kind of a C field: its size and how Java writes it. */
    public enum Kind {
        /** A device pointer (8 bytes). */
        POINTER(8),
        /** {@code int64_t}. */
        INT64(8),
        /** {@code int32_t}. */
        INT32(4),
        /** {@code float}. */
        FLOAT(4);

        private final int size;

        Kind(int size) {
            this.size = size;
        }

        /**
         * Returns the size (and alignment) in bytes.
         *
         * @return bytes
         */
        public int size() {
            return size;
        }
    }

    /** The fields of {@code FlashFwdParams}, in declaration order. */
    public enum Field {
        /** {@code const void* q}. */
        Q("q", Kind.POINTER),
        /** {@code const void* k}. */
        K("k", Kind.POINTER),
        /** {@code const void* v}. */
        V("v", Kind.POINTER),
        /** {@code void* o}. */
        O("o", Kind.POINTER),
        /** {@code float* lse}, 0 = not wanted. */
        LSE("lse", Kind.POINTER),
        /** {@code const int32_t* cu_seqlens_q}, 0 = dense. */
        CU_SEQLENS_Q("cu_seqlens_q", Kind.POINTER),
        /** {@code const int32_t* cu_seqlens_k}, 0 = dense. */
        CU_SEQLENS_K("cu_seqlens_k", Kind.POINTER),
        /** {@code const float* alibi_slopes}, 0 = off. */
        ALIBI_SLOPES("alibi_slopes", Kind.POINTER),
        /** Query batch stride (elements). */
        Q_BATCH_STRIDE("q_batch_stride", Kind.INT64),
        /** Query head stride (elements). */
        Q_HEAD_STRIDE("q_head_stride", Kind.INT64),
        /** Query row stride (elements). */
        Q_ROW_STRIDE("q_row_stride", Kind.INT64),
        /** Key batch stride (elements). */
        K_BATCH_STRIDE("k_batch_stride", Kind.INT64),
        /** Key head stride (elements). */
        K_HEAD_STRIDE("k_head_stride", Kind.INT64),
        /** Key row stride (elements). */
        K_ROW_STRIDE("k_row_stride", Kind.INT64),
        /** Value batch stride (elements). */
        V_BATCH_STRIDE("v_batch_stride", Kind.INT64),
        /** Value head stride (elements). */
        V_HEAD_STRIDE("v_head_stride", Kind.INT64),
        /** Value row stride (elements). */
        V_ROW_STRIDE("v_row_stride", Kind.INT64),
        /** Output batch stride (elements). */
        O_BATCH_STRIDE("o_batch_stride", Kind.INT64),
        /** Output head stride (elements). */
        O_HEAD_STRIDE("o_head_stride", Kind.INT64),
        /** Output row stride (elements). */
        O_ROW_STRIDE("o_row_stride", Kind.INT64),
        /** LSE batch stride (elements). */
        LSE_BATCH_STRIDE("lse_batch_stride", Kind.INT64),
        /** LSE head stride (elements). */
        LSE_HEAD_STRIDE("lse_head_stride", Kind.INT64),
        /** LSE row stride (elements). */
        LSE_ROW_STRIDE("lse_row_stride", Kind.INT64),
        /** Batch size (varlen: number of sequences). */
        BATCH("batch", Kind.INT32),
        /** Query heads. */
        HQ("hq", Kind.INT32),
        /** Key/value heads. */
        HKV("hkv", Kind.INT32),
        /** Query length (varlen: the longest). */
        LQ("lq", Kind.INT32),
        /** Key length (varlen: the longest). */
        LK("lk", Kind.INT32),
        /** Head dim. */
        HEAD_DIM("head_dim", Kind.INT32),
        /** 1 = bottom-right causal. */
        CAUSAL("causal", Kind.INT32),
        /** Left window, -1 = unbounded. */
        WINDOW_LEFT("window_left", Kind.INT32),
        /** Right window, -1 = unbounded. */
        WINDOW_RIGHT("window_right", Kind.INT32),
        /** Leading keys that ignore the window's left bound. */
        SINK_TOKENS("sink_tokens", Kind.INT32),
        /** Softmax scale. */
        SCALE("scale", Kind.FLOAT),
        /** Softcap, 0 = off. */
        SOFTCAP("softcap", Kind.FLOAT);

        private final String cName;
        private final Kind kind;
        private int offset;

        Field(String cName, Kind kind) {
            this.cName = cName;
            this.kind = kind;
        }

        /**
         * Returns the C field name.
         *
         * @return e.g. {@code "q_batch_stride"}
         */
        public String cName() {
            return cName;
        }

        /**
         * Returns the field's kind.
         *
         * @return the kind
         */
        public Kind kind() {
            return kind;
        }

        /**
         * Returns the byte offset in the struct.
         *
         * @return the offset
         */
        public int offset() {
            return offset;
        }
    }

    /** {@code sizeof(FlashFwdParams)}. */
    public static final int SIZE;

    static {
        int off = 0;
        int align = 1;
        for (Field f : Field.values()) {
            int size = f.kind.size();
            off = (off + size - 1) / size * size;
            f.offset = off;
            off += size;
            align = Math.max(align, size);
        }
        SIZE = (off + align - 1) / align * align;
    }

    private final ByteBuffer buffer = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);

    /** Creates a zeroed parameter block. */
    public FlashParams() {}

    /**
     * Returns a copy of this parameter block.
     *
     * @return an independent copy
     */
    public FlashParams copy() {
        FlashParams c = new FlashParams();
        c.buffer.put(0, buffer, 0, SIZE);
        return c;
    }

    /**
     * Returns a field by its C name.
     *
     * @param cName e.g. {@code "scale"}
     * @return the field
     * @throws IllegalArgumentException if no field has that name
     */
    public static Field field(String cName) {
        for (Field f : Field.values()) {
            if (f.cName.equals(cName)) {
                return f;
            }
        }
        throw new IllegalArgumentException("FlashFwdParams has no field '" + cName + "'");
    }

    /**
     * Sets a pointer or int64 field.
     *
     * @param field the field
     * @param value the value (an address for pointers)
     * @return this
     */
    public FlashParams setLong(Field field, long value) {
        require(field, Kind.POINTER, Kind.INT64);
        buffer.putLong(field.offset, value);
        return this;
    }

    /**
     * Sets an int32 field.
     *
     * @param field the field
     * @param value the value
     * @return this
     */
    public FlashParams setInt(Field field, int value) {
        require(field, Kind.INT32, Kind.INT32);
        buffer.putInt(field.offset, value);
        return this;
    }

    /**
     * Sets a float field.
     *
     * @param field the field
     * @param value the value
     * @return this
     */
    public FlashParams setFloat(Field field, float value) {
        require(field, Kind.FLOAT, Kind.FLOAT);
        buffer.putFloat(field.offset, value);
        return this;
    }

    /**
     * Reads a field as a number (for logging and tests).
     *
     * @param field the field
     * @return its value
     */
    public Number get(Field field) {
        switch (field.kind) {
            case POINTER:
            case INT64:
                return buffer.getLong(field.offset);
            case INT32:
                return buffer.getInt(field.offset);
            default:
                return buffer.getFloat(field.offset);
        }
    }

    private static void require(Field field, Kind a, Kind b) {
        if (field.kind != a && field.kind != b) {
            throw new IllegalArgumentException("field " + field.cName + " is " + field.kind + ", not " + a);
        }
    }

    /**
     * Returns the struct's bytes, to pass as {@code Pointer.to(Pointer.to(bytes))} kernel parameters.
     *
     * @return a copy of the {@link #SIZE} bytes
     */
    public byte[] toBytes() {
        return Arrays.copyOf(buffer.array(), SIZE);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("FlashFwdParams{");
        for (Field f : Field.values()) {
            if (f != Field.Q) {
                sb.append(", ");
            }
            Number v = get(f);
            sb.append(f.cName).append('=');
            sb.append(f.kind == Kind.POINTER ? "0x" + Long.toHexString(v.longValue()) : v.toString());
        }
        return sb.append('}').toString();
    }
}
