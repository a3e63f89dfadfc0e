package org.flashdjl.examples.safetensors;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes safetensors files from float32 data, stored as F32, F16 or BF16 (rounded to nearest even). The header
 * is padded with spaces to a multiple of 8 bytes, as Hugging Face's writer does; the file is written to a
 * temporary name and moved into place, so readers never see a partial file.
 *
 * <pre>{@code
 * new SafetensorsWriter().add("w", SafeDType.F32, new long[] {2, 3}, values).write(path);
 * }</pre>
 */
public final class SafetensorsWriter {

    private static final class Entry {
        final SafeDType dtype;
        final long[] shape;
        final float[] data;

        Entry(SafeDType dtype, long[] shape, float[] data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
        }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /**
     * Adds a tensor.
     *
     * @param name the tensor name
     * @param dtype how to store it (F32, F16 or BF16)
     * @param shape the shape
     * @param data row-major values, as many as the shape holds
     * @return this writer
     */
    public SafetensorsWriter add(String name, SafeDType dtype, long[] shape, float[] data) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape holds " + n + " values, got "
                    + data.length);
        }
        if (dtype == SafeDType.F64) {
            throw new IllegalArgumentException("the writer stores F32, F16 or BF16");
        }
        entries.put(name, new Entry(dtype, shape.clone(), data));
        return this;
    }

    /**
     * Adds a {@code __metadata__} string.
     *
     * @param key the key
     * @param value the value
     * @return this writer
     */
    public SafetensorsWriter addMetadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /**
     * Writes the file.
     *
     * @param path the destination
     * @throws IOException if it cannot be written
     */
    public void write(Path path) throws IOException {
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject m = new JsonObject();
            metadata.forEach(m::addProperty);
            header.add("__metadata__", m);
        }
        long offset = 0;
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            Entry t = e.getValue();
            long bytes = (long) t.data.length * t.dtype.getSize();
            JsonObject o = new JsonObject();
            o.addProperty("dtype", t.dtype.name());
            JsonArray shape = new JsonArray();
            for (long d : t.shape) {
                shape.add(d);
            }
            o.add("shape", shape);
            JsonArray off = new JsonArray();
            off.add(offset);
            off.add(offset + bytes);
            o.add("data_offsets", off);
            header.add(e.getKey(), o);
            offset += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        Path parent = path.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = Files.createTempFile(parent, path.getFileName().toString(), ".tmp");
        try (OutputStream os = Files.newOutputStream(tmp)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            os.write(len.array());
            os.write(json);
            for (int i = json.length; i < padded; i++) {
                os.write(' ');
            }
            for (Entry t : entries.values()) {
                ByteBuffer buf = ByteBuffer.allocate(t.data.length * t.dtype.getSize())
                        .order(ByteOrder.LITTLE_ENDIAN);
                for (float f : t.data) {
                    switch (t.dtype) {
                        case F32:
                            buf.putFloat(f);
                            break;
                        case F16:
                            buf.putShort(HalfFloats.floatToF16(f));
                            break;
                        default:
                            buf.putShort(HalfFloats.floatToBf16(f));
                            break;
                    }
                }
                os.write(buf.array());
            }
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
