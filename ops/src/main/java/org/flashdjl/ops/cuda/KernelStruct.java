package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one packer of the kernels' by-value parameter structs: a {@link Layout} (a C struct's fields in declaration
 * order with their {@link Kind}s, nested structs flattened to {@code "member.field"}, natural C alignment,
 * little-endian) and a zeroed buffer of that size. Every kernel family takes one ({@code FlashFwdParams},
 * {@code PagedDecodeParams}, {@code PagedPrefillParams}, {@code MergeStateParams}); the mask and score options are
 * the nested {@link #MASK_PARAMS} of the first three, set from a spec by {@link #setMask}. Unit tests pin every
 * layout against its C header's declarations and {@code static_assert}s.
 *
 * <pre>{@code
 * KernelStruct p = MergeStateKernel.LAYOUT.newStruct().set("v_a", address).set("rows", n);
 * kernel.launch(gridX, 1, 1, p.toBytes());
 * }</pre>
 */
public final class KernelStruct {

    /** The kind of a C field: its size (also its alignment) and how Java writes it. */
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

    /** {@code struct MaskParams} ({@code mask_params.h}): the mask and score options nested in the kernels' structs. */
    public static final Layout MASK_PARAMS = Layout.of("MaskParams", "key_offset", Kind.INT32, "causal", Kind.INT32,
            "window_left", Kind.INT32, "window_right", Kind.INT32, "sink_tokens", Kind.INT32, "scale", Kind.FLOAT,
            "softcap", Kind.FLOAT, "query_shift", Kind.INT32);

    private final Layout layout;
    private final ByteBuffer buffer;

    private KernelStruct(Layout layout) {
        this.layout = layout;
        this.buffer = ByteBuffer.allocate(layout.size()).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Returns the layout.
     *
     * @return the layout
     */
    public Layout getLayout() {
        return layout;
    }

    /**
     * Sets a field: a pointer or int64 field takes any long, an int32 field an int-sized value, a float field
     * its value converted to float.
     *
     * @param name the C field name ({@code "member.field"} inside a nested struct)
     * @param value the value (an address for pointers)
     * @return this
     * @throws IllegalArgumentException for an unknown field or an int32 value out of range
     */
    public KernelStruct set(String name, long value) {
        Layout.Field f = layout.field(name);
        switch (f.kind()) {
            case POINTER:
            case INT64:
                buffer.putLong(f.offset(), value);
                break;
            case INT32:
                if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(layout.name() + "." + name + " is int32; " + value
                            + " is out of range");
                }
                buffer.putInt(f.offset(), (int) value);
                break;
            default:
                buffer.putFloat(f.offset(), value);
        }
        return this;
    }

    /**
     * Sets a float field.
     *
     * @param name the C field name
     * @param value the value
     * @return this
     * @throws IllegalArgumentException if the field is not a float
     */
    public KernelStruct setFloat(String name, float value) {
        Layout.Field f = layout.field(name);
        if (f.kind() != Kind.FLOAT) {
            throw new IllegalArgumentException(layout.name() + "." + name + " is " + f.kind() + ", not FLOAT");
        }
        buffer.putFloat(f.offset(), value);
        return this;
    }

    /**
     * Sets the options of the nested {@link #MASK_PARAMS} member {@code mask} from a spec: the one place where the
     * options of {@link AttentionSpec} become kernel parameters. The positions ({@code mask.key_offset},
     * {@code mask.query_shift}) stay 0 (bottom-right aligned, keys from global index 0) unless the caller sets them.
     *
     * @param spec the options
     * @param headDim D (for the default scale)
     * @return this
     */
    public KernelStruct setMask(AttentionSpec spec, int headDim) {
        set("mask.causal", spec.isCausal() ? 1 : 0);
        set("mask.window_left", spec.getWindowLeft());
        set("mask.window_right", spec.getWindowRight());
        set("mask.sink_tokens", spec.getSinkTokens());
        setFloat("mask.scale", spec.scaleFor(headDim));
        setFloat("mask.softcap", spec.getSoftcap());
        return this;
    }

    /**
     * Reads a field (logging, tests).
     *
     * @param name the C field name
     * @return the value: Long for pointers and int64, Integer for int32, Float for float
     */
    public Number get(String name) {
        Layout.Field f = layout.field(name);
        switch (f.kind()) {
            case POINTER:
            case INT64:
                return buffer.getLong(f.offset());
            case INT32:
                return buffer.getInt(f.offset());
            default:
                return buffer.getFloat(f.offset());
        }
    }

    /**
     * Returns an independent copy (e.g. to fill per-launch addresses into a prepared struct).
     *
     * @return the copy
     */
    public KernelStruct copy() {
        KernelStruct c = new KernelStruct(layout);
        c.buffer.put(0, buffer, 0, layout.size());
        return c;
    }

    /**
     * Returns the struct's bytes, the kernel argument of {@link KernelModule.Kernel#launch}.
     *
     * @return a copy of the {@link Layout#size()} bytes
     */
    public byte[] toBytes() {
        return Arrays.copyOf(buffer.array(), layout.size());
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(layout.name()).append('{');
        for (Layout.Field f : layout.fields()) {
            if (sb.charAt(sb.length() - 1) != '{') {
                sb.append(", ");
            }
            Number v = get(f.name());
            sb.append(f.name()).append('=').append(f.kind() == Kind.POINTER
                    ? "0x" + Long.toHexString(v.longValue()) : v.toString());
        }
        return sb.append('}').toString();
    }

    /** The fields of one C struct in declaration order, with offsets under natural alignment. */
    public static final class Layout {
        private final String name;
        private final List<Field> fields;
        private final Map<String, Field> byName;
        private final Map<String, Integer> members; // every declared member (nested structs too) -> offset
        private final int size;
        private final int alignment;

        /**
         * One (leaf) field.
         *
         * @param name the C name, {@code "member.field"} inside a nested struct
         * @param kind its kind
         * @param offset its byte offset
         */
        public record Field(String name, Kind kind, int offset) {}

        private Layout(String name, List<Field> fields, Map<String, Integer> members, int size, int alignment) {
            this.name = name;
            this.fields = Collections.unmodifiableList(fields);
            Map<String, Field> map = new LinkedHashMap<>();
            for (Field f : fields) {
                if (map.put(f.name(), f) != null) {
                    throw new IllegalArgumentException("duplicate field " + f.name() + " in " + name);
                }
            }
            this.byName = map;
            this.members = Collections.unmodifiableMap(members);
            this.size = size;
            this.alignment = alignment;
        }

        /**
         * Lays out a struct.
         *
         * @param structName the C struct name, e.g. {@code "MergeStateParams"}
         * @param spec alternating C member names and their {@link Kind}s or nested {@link Layout}s, in declaration
         *     order
         * @return the layout
         */
        public static Layout of(String structName, Object... spec) {
            if (spec.length % 2 != 0) {
                throw new IllegalArgumentException("spec must alternate names and kinds");
            }
            List<Field> list = new ArrayList<>();
            Map<String, Integer> members = new LinkedHashMap<>();
            int off = 0;
            int align = 1;
            for (int i = 0; i < spec.length; i += 2) {
                String member = (String) spec[i];
                if (spec[i + 1] instanceof Layout nested) {
                    off = (off + nested.alignment - 1) / nested.alignment * nested.alignment;
                    members.put(member, off);
                    for (Field f : nested.fields) {
                        list.add(new Field(member + "." + f.name(), f.kind(), off + f.offset()));
                    }
                    for (Map.Entry<String, Integer> m : nested.members.entrySet()) {
                        members.put(member + "." + m.getKey(), off + m.getValue());
                    }
                    off += nested.size;
                    align = Math.max(align, nested.alignment);
                } else {
                    Kind kind = (Kind) spec[i + 1];
                    int s = kind.size();
                    off = (off + s - 1) / s * s;
                    members.put(member, off);
                    list.add(new Field(member, kind, off));
                    off += s;
                    align = Math.max(align, s);
                }
            }
            return new Layout(structName, list, members, (off + align - 1) / align * align, align);
        }

        /**
         * Returns the C struct name.
         *
         * @return the name
         */
        public String name() {
            return name;
        }

        /**
         * Returns the leaf fields in declaration order (nested structs flattened).
         *
         * @return the fields
         */
        public List<Field> fields() {
            return fields;
        }

        /**
         * Returns {@code sizeof} the struct.
         *
         * @return bytes
         */
        public int size() {
            return size;
        }

        /**
         * Returns {@code alignof} the struct.
         *
         * @return bytes
         */
        public int alignment() {
            return alignment;
        }

        /**
         * Returns {@code offsetof} a declared member (a field or a nested struct).
         *
         * @param memberName e.g. {@code "mask"} or {@code "mask.scale"}
         * @return the byte offset
         * @throws IllegalArgumentException if there is none
         */
        public int offsetOf(String memberName) {
            Integer off = members.get(memberName);
            if (off == null) {
                throw new IllegalArgumentException(name + " has no member '" + memberName + "'; members: "
                        + members.keySet());
            }
            return off;
        }

        /**
         * Returns a leaf field by name.
         *
         * @param fieldName the C name ({@code "member.field"} inside a nested struct)
         * @return the field
         * @throws IllegalArgumentException if there is none
         */
        public Field field(String fieldName) {
            Field f = byName.get(fieldName);
            if (f == null) {
                throw new IllegalArgumentException(name + " has no field '" + fieldName + "'; fields: "
                        + byName.keySet());
            }
            return f;
        }

        /**
         * Returns a zeroed struct of this layout.
         *
         * @return the struct
         */
        public KernelStruct newStruct() {
            return new KernelStruct(this);
        }

        /**
         * Reads a packed struct of this layout (e.g. a launcher or a log inspecting the bytes it was given).
         *
         * @param bytes {@link #size()} bytes, little-endian
         * @return a struct holding a copy of them
         * @throws IllegalArgumentException if the length is not {@link #size()}
         */
        public KernelStruct read(byte[] bytes) {
            if (bytes.length != size) {
                throw new IllegalArgumentException(name + " is " + size + " bytes, got " + bytes.length);
            }
            KernelStruct s = new KernelStruct(this);
            s.buffer.put(0, bytes);
            return s;
        }
    }
}
