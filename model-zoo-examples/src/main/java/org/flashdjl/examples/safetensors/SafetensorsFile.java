package org.flashdjl.examples.safetensors;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A validated safetensors file. {@link #open} reads and checks the whole header (length against the file size,
 * JSON form, known dtypes, shapes, offsets inside the data section, {@code elements x dtype size == byte span});
 * tensors are then read on demand and converted to float32 (or float16) in Java, so bf16 data never reaches a
 * DJL NDArray as bf16.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** Largest header accepted (100 MB, as the Rust reference implementation). */
    public static final long MAX_HEADER = 100L << 20;

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final long dataLength;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, long dataLength,
            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.dataLength = dataLength;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /**
     * Opens and validates a file.
     *
     * @param path the file
     * @return the open file
     * @throws CheckpointException naming the file (and tensor) when anything is malformed
     * @throws IOException when the file cannot be read
     */
    public static SafetensorsFile open(Path path) throws IOException {
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long size = channel.size();
            if (size < 8) {
                throw new CheckpointException(path, null, "file has " + size
                        + " bytes, fewer than the 8-byte header length (truncated or not safetensors)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lenBuf, 0);
            long headerLen = lenBuf.getLong(0);
            if (headerLen < 2 || headerLen > MAX_HEADER) {
                throw new CheckpointException(path, null, "header length " + headerLen
                        + " is out of range [2, " + MAX_HEADER + "] (not a safetensors file?)");
            }
            if (8 + headerLen > size) {
                throw new CheckpointException(path, null, "header length " + headerLen + " exceeds the file size "
                        + size + " (file truncated?)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(channel, header, 8);
            String json = new String(header.array(), StandardCharsets.UTF_8);
            JsonObject root;
            try {
                JsonElement e = JsonParser.parseString(json);
                if (!e.isJsonObject()) {
                    throw new CheckpointException(path, null, "header is not a JSON object");
                }
                root = e.getAsJsonObject();
            } catch (JsonParseException e) {
                throw new CheckpointException(path, null, "header is not valid JSON: " + e.getMessage(), e);
            }
            long dataStart = 8 + headerLen;
            long dataLength = size - dataStart;
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> entry : root.entrySet()) {
                String name = entry.getKey();
                if ("__metadata__".equals(name)) {
                    if (entry.getValue().isJsonObject()) {
                        for (Map.Entry<String, JsonElement> m : entry.getValue().getAsJsonObject().entrySet()) {
                            metadata.put(m.getKey(), m.getValue().isJsonPrimitive()
                                    ? m.getValue().getAsString() : m.getValue().toString());
                        }
                    }
                    continue;
                }
                tensors.put(name, parseEntry(path, name, entry.getValue(), dataLength));
            }
            return new SafetensorsFile(path, channel, dataStart, dataLength, tensors, metadata);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static TensorInfo parseEntry(Path path, String name, JsonElement value, long dataLength)
            throws CheckpointException {
        if (!value.isJsonObject()) {
            throw new CheckpointException(path, name, "header entry is not an object");
        }
        JsonObject o = value.getAsJsonObject();
        if (!o.has("dtype") || !o.has("shape") || !o.has("data_offsets")) {
            throw new CheckpointException(path, name, "header entry needs dtype, shape and data_offsets, has "
                    + o.keySet());
        }
        String dtypeName = o.get("dtype").getAsString();
        SafeDType dtype = SafeDType.of(dtypeName);
        if (dtype == null) {
            throw new CheckpointException(path, name, "unknown or unsupported dtype '" + dtypeName
                    + "'; supported: " + SafeDType.supported());
        }
        long[] shape;
        long begin;
        long end;
        try {
            JsonArray s = o.getAsJsonArray("shape");
            shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.get(i).getAsLong();
                if (shape[i] < 0) {
                    throw new CheckpointException(path, name, "negative dimension in shape " + s);
                }
            }
            JsonArray off = o.getAsJsonArray("data_offsets");
            if (off.size() != 2) {
                throw new CheckpointException(path, name, "data_offsets must be [begin, end], got " + off);
            }
            begin = off.get(0).getAsLong();
            end = off.get(1).getAsLong();
        } catch (ClassCastException | IllegalStateException | NumberFormatException e) {
            throw new CheckpointException(path, name, "malformed shape or data_offsets: " + o, e);
        }
        if (begin < 0 || end < begin) {
            throw new CheckpointException(path, name, "data_offsets [" + begin + ", " + end + "] are not a range");
        }
        if (end > dataLength) {
            throw new CheckpointException(path, name, "data_offsets [" + begin + ", " + end
                    + "] run past the data section of " + dataLength + " bytes (file truncated?)");
        }
        long elements = 1;
        for (long d : shape) {
            elements = Math.multiplyExact(elements, d);
        }
        long expected = elements * dtype.getSize();
        if (expected != end - begin) {
            throw new CheckpointException(path, name, "shape " + new Shape(shape) + " x " + dtype + " ("
                    + dtype.getSize() + " B) = " + expected + " bytes, but data_offsets span " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static void readFully(FileChannel channel, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = channel.read(buf, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            pos += n;
        }
    }

    /** @return the file */
    public Path getPath() {
        return path;
    }

    /** @return the tensors by name, in header order */
    public Map<String, TensorInfo> getTensors() {
        return tensors;
    }

    /** @return the {@code __metadata__} strings */
    public Map<String, String> getMetadata() {
        return metadata;
    }

    /**
     * Returns a tensor's header entry.
     *
     * @param name the tensor name
     * @return the entry
     * @throws CheckpointException if the file has no such tensor
     */
    public TensorInfo info(String name) throws CheckpointException {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException(path, name, "no such tensor in this file");
        }
        return info;
    }

    /**
     * Reads a tensor as float32 values (row-major), converting F16, BF16 and F64 in Java.
     *
     * @param name the tensor name
     * @return the values
     * @throws IOException if it cannot be read
     */
    public float[] readFloats(String name) throws IOException {
        TensorInfo info = info(name);
        long n = info.size();
        if (n > Integer.MAX_VALUE - 8) {
            throw new CheckpointException(path, name, "has " + n + " elements, more than one Java array holds");
        }
        ByteBuffer raw = map(info).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) n];
        switch (info.getDtype()) {
            case F32:
                raw.asFloatBuffer().get(out);
                break;
            case F16:
                for (int i = 0; i < out.length; i++) {
                    out[i] = HalfFloats.f16ToFloat(raw.getShort(2 * i));
                }
                break;
            case BF16:
                for (int i = 0; i < out.length; i++) {
                    out[i] = HalfFloats.bf16ToFloat(raw.getShort(2 * i));
                }
                break;
            case F64:
                for (int i = 0; i < out.length; i++) {
                    out[i] = (float) raw.getDouble(8 * i);
                }
                break;
            default:
                throw new CheckpointException(path, name, "unsupported dtype " + info.getDtype());
        }
        return out;
    }

    /**
     * Reads a tensor into an NDArray of {@code type} (float32, or float16 which keeps F16 data as is).
     *
     * @param manager the manager of the result
     * @param name the tensor name
     * @param type {@link DataType#FLOAT32} or {@link DataType#FLOAT16}
     * @return the array, shaped as in the header
     * @throws IOException if it cannot be read
     */
    public NDArray load(NDManager manager, String name, DataType type) throws IOException {
        TensorInfo info = info(name);
        if (type == DataType.FLOAT16 && info.getDtype() == SafeDType.F16) {
            ByteBuffer raw = map(info).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer direct = ByteBuffer.allocateDirect(raw.remaining()).order(ByteOrder.nativeOrder());
            while (raw.hasRemaining()) {
                direct.putShort(raw.getShort());
            }
            direct.rewind();
            return manager.create(direct, info.getShape(), DataType.FLOAT16);
        }
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("tensors load as float32 or float16, not " + type);
        }
        NDArray a = manager.create(FloatBuffer.wrap(readFloats(name)), info.getShape());
        return type == DataType.FLOAT32 ? a : a.toType(type, false);
    }

    private ByteBuffer map(TensorInfo info) throws IOException {
        long len = info.getEnd() - info.getBegin();
        if (len == 0) {
            return ByteBuffer.allocate(0);
        }
        if (dataStart + info.getEnd() > channel.size()) {
            throw new CheckpointException(path, info.getName(), "file shrank below the tensor's data (truncated)");
        }
        MappedByteBuffer m = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + info.getBegin(), len);
        return m;
    }

    /** @return the size of the data section in bytes */
    public long getDataLength() {
        return dataLength;
    }

    /** {@inheritDoc} */
    @Override
    public void close() throws IOException {
        channel.close();
    }
}
