package org.flashdjl.ops.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A by-value kernel parameter struct packed in Java: a {@link Layout} (the C struct's fields in declaration order
 * with their {@link FlashParams.Kind}s, natural C alignment, little-endian) and a zeroed buffer of that size. The
 * merge-state and paged-decode kernels take one each; unit tests pin every layout against the C header's
 * declarations and {@code static_assert}s.
 *
 * <pre>{@code
 * KernelStruct p = MergeStateKernel.LAYOUT.newStruct().set("v_a", address).set("rows", n);
 * kernel.launch(gridX, 1, 1, p.toBytes());
 * }</pre>
 */
public final class KernelStruct {

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
     * @param name the C field name
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
        if (f.kind() != FlashParams.Kind.FLOAT) {
            throw new IllegalArgumentException(layout.name() + "." + name + " is " + f.kind() + ", not FLOAT");
        }
        buffer.putFloat(f.offset(), value);
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
            sb.append(f.name()).append('=').append(f.kind() == FlashParams.Kind.POINTER
                    ? "0x" + Long.toHexString(v.longValue()) : v.toString());
        }
        return sb.append('}').toString();
    }

    /** The fields of one C struct in declaration order, with offsets under natural alignment. */
    public static final class Layout {
        private final String name;
        private final List<Field> fields;
        private final Map<String, Field> byName;
        private final int size;

        /**
         * One field.
         *
         * @param name the C name
         * @param kind its kind
         * @param offset its byte offset
         */
        public record Field(String name, FlashParams.Kind kind, int offset) {}

        private Layout(String name, List<Field> fields, int size) {
            this.name = name;
            this.fields = Collections.unmodifiableList(fields);
            Map<String, Field> map = new LinkedHashMap<>();
            for (Field f : fields) {
                if (map.put(f.name(), f) != null) {
                    throw new IllegalArgumentException("duplicate field " + f.name() + " in " + name);
                }
            }
            this.byName = map;
            this.size = size;
        }

        /**
         * Lays out a struct.
         *
         * @param structName the C struct name, e.g. {@code "MergeStateParams"}
         * @param spec alternating C field names and {@link FlashParams.Kind}s, in declaration order
         * @return the layout
         */
        public static Layout of(String structName, Object... spec) {
            if (spec.length % 2 != 0) {
                throw new IllegalArgumentException("spec must alternate names and kinds");
            }
            List<Field> list = new ArrayList<>();
            int off = 0;
            int align = 1;
            for (int i = 0; i < spec.length; i += 2) {
                FlashParams.Kind kind = (FlashParams.Kind) spec[i + 1];
                int s = kind.size();
                off = (off + s - 1) / s * s;
                list.add(new Field((String) spec[i], kind, off));
                off += s;
                align = Math.max(align, s);
            }
            return new Layout(structName, list, (off + align - 1) / align * align);
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
         * Returns the fields in declaration order.
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
         * Returns a field by name.
         *
         * @param fieldName the C name
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
    }
}
