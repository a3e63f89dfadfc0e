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
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A validated safetensors file. {@link #open} reads and checks the whole header before any tensor data (length
 * against the file size, JSON form and types, known dtypes, integer shapes and offsets, byte counts without
 * overflow, offsets inside the data section and not overlapping, {@code elements x dtype size == byte span});
 * tensors are then read on demand and converted to float32 or float16 in Java, so bf16 data never reaches a DJL
 * NDArray as bf16, and NaN or infinite values (or values that overflow float16) are refused naming the tensor.
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
        if (Files.isDirectory(path)) {
            throw new CheckpointException(path, null, "is a directory, not a safetensors file");
        }
        if (!Files.isRegularFile(path)) {
            throw new CheckpointException(path, null, "safetensors file not found (or not a regular file)");
        }
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
            } catch (JsonParseException | StackOverflowError e) {
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
            checkNoOverlap(path, tensors);
            return new SafetensorsFile(path, channel, dataStart, dataLength, tensors, metadata);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static TensorInfo parseEntry(Path path, String name, JsonElement value, long dataLength)
            throws CheckpointException {
        if (!value.isJsonObject()) {
            throw new CheckpointException(path, name, "header entry is not an object, got " + value);
        }
        JsonObject o = value.getAsJsonObject();
        if (!o.has("dtype") || !o.has("shape") || !o.has("data_offsets")) {
            throw new CheckpointException(path, name, "header entry needs dtype, shape and data_offsets, has "
                    + o.keySet());
        }
        JsonElement dt = o.get("dtype");
        if (!dt.isJsonPrimitive() || !dt.getAsJsonPrimitive().isString()) {
            throw new CheckpointException(path, name, "dtype must be a string, got " + dt);
        }
        String dtypeName = dt.getAsString();
        SafeDType dtype = SafeDType.of(dtypeName);
        if (dtype == null) {
            throw new CheckpointException(path, name, "unknown or unsupported dtype '" + dtypeName
                    + "'; supported: " + SafeDType.supported());
        }
        long[] shape = longs(path, name, "shape", o.get("shape"), -1);
        long[] off = longs(path, name, "data_offsets", o.get("data_offsets"), 2);
        long begin = off[0];
        long end = off[1];
        if (end < begin) {
            throw new CheckpointException(path, name, "data_offsets [" + begin + ", " + end + "] are not a range");
        }
        if (end > dataLength) {
            throw new CheckpointException(path, name, "data_offsets [" + begin + ", " + end
                    + "] run past the data section of " + dataLength + " bytes (file truncated?)");
        }
        long expected;
        try {
            long elements = 1;
            for (long d : shape) {
                elements = Math.multiplyExact(elements, d);
            }
            expected = Math.multiplyExact(elements, dtype.getSize());
        } catch (ArithmeticException e) {
            throw new CheckpointException(path, name, "shape " + new Shape(shape) + " x " + dtype
                    + " has a byte count beyond 2^63 (a corrupt header)");
        }
        if (expected != end - begin) {
            throw new CheckpointException(path, name, "shape " + new Shape(shape) + " x " + dtype + " ("
                    + dtype.getSize() + " B) = " + expected + " bytes, but data_offsets span " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    // A JSON array of non-negative integers (of exactly `size` entries when size >= 0).
    private static long[] longs(Path path, String name, String key, JsonElement e, int size)
            throws CheckpointException {
        if (!e.isJsonArray() || (size >= 0 && e.getAsJsonArray().size() != size)) {
            throw new CheckpointException(path, name, key + " must be " + (size == 2 ? "[begin, end]"
                    : "a list of integers") + ", got " + e);
        }
        JsonArray a = e.getAsJsonArray();
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonElement x = a.get(i);
            try {
                if (!x.isJsonPrimitive() || !x.getAsJsonPrimitive().isNumber()) {
                    throw new NumberFormatException();
                }
                out[i] = new BigDecimal(x.getAsString()).longValueExact();
            } catch (NumberFormatException | ArithmeticException ex) {
                throw new CheckpointException(path, name, key + " must hold integers in [0, 2^63), got " + e);
            }
            if (out[i] < 0) {
                throw new CheckpointException(path, name, key + " must hold integers >= 0, got " + e);
            }
        }
        return out;
    }

    // Each byte of the data section belongs to at most one tensor.
    private static void checkNoOverlap(Path path, Map<String, TensorInfo> tensors) throws CheckpointException {
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo t : tensors.values()) {
            if (t.getEnd() > t.getBegin()) {
                sorted.add(t);
            }
        }
        sorted.sort(Comparator.comparingLong(TensorInfo::getBegin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo prev = sorted.get(i - 1);
            TensorInfo t = sorted.get(i);
            if (t.getBegin() < prev.getEnd()) {
                throw new CheckpointException(path, t.getName(), "data_offsets [" + t.getBegin() + ", " + t.getEnd()
                        + "] overlap those of '" + prev.getName() + "' [" + prev.getBegin() + ", " + prev.getEnd()
                        + "]");
            }
        }
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
        for (int i = 0; i < out.length; i++) {
            out[i] = element(raw, info.getDtype(), i);
        }
        return out;
    }

    private static float element(ByteBuffer raw, SafeDType dtype, int i) {
        switch (dtype) {
            case F32:
                return raw.getFloat(4 * i);
            case F16:
                return HalfFloats.f16ToFloat(raw.getShort(2 * i));
            case BF16:
                return HalfFloats.bf16ToFloat(raw.getShort(2 * i));
            case F64:
                return (float) raw.getDouble(8 * i);
            default:
                throw new IllegalStateException(dtype.toString());
        }
    }

    /**
     * Reads a tensor into an NDArray of {@code type}: float32, or float16 (F16 data kept bit for bit; BF16, F32 and
     * F64 data rounded to nearest even), converted in Java before the NDArray exists.
     *
     * @param manager the manager of the result
     * @param name the tensor name
     * @param type {@link DataType#FLOAT32} or {@link DataType#FLOAT16}
     * @return the array, shaped as in the header
     * @throws CheckpointException naming the tensor and element when a value is NaN or infinite, or is finite but
     *     beyond the range of {@code type}
     * @throws IOException if it cannot be read
     */
    public NDArray load(NDManager manager, String name, DataType type) throws IOException {
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("tensors load as float32 or float16, not " + type);
        }
        TensorInfo info = info(name);
        long n = info.size();
        long bytes = n * type.getNumOfBytes();
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new CheckpointException(path, name, "is " + bytes + " bytes as " + type
                    + ", more than one buffer holds (2 GiB)");
        }
        ByteBuffer raw = map(info).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
        SafeDType src = info.getDtype();
        for (int i = 0; i < n; i++) {
            if (type == DataType.FLOAT16 && src == SafeDType.F16) {
                short h = raw.getShort(2 * i);
                if ((h & 0x7c00) == 0x7c00) {
                    throw notFinite(name, i, HalfFloats.f16ToFloat(h));
                }
                out.putShort(2 * i, h);
                continue;
            }
            float f = element(raw, src, i);
            if (!Float.isFinite(f)) {
                throw src == SafeDType.F64 && Double.isFinite(raw.getDouble(8 * i))
                        ? overflow(name, i, raw.getDouble(8 * i), type) : notFinite(name, i, f);
            }
            if (type == DataType.FLOAT32) {
                out.putFloat(4 * i, f);
            } else {
                short h = HalfFloats.floatToF16(f);
                if ((h & 0x7c00) == 0x7c00) {
                    throw overflow(name, i, f, type);
                }
                out.putShort(2 * i, h);
            }
        }
        return manager.create(out, info.getShape(), type);
    }

    private CheckpointException notFinite(String name, long index, float value) {
        return new CheckpointException(path, name, "element " + index + " is " + value
                + " (a checkpoint with NaN or infinite weights cannot produce meaningful output)");
    }

    private CheckpointException overflow(String name, long index, double value, DataType type) {
        return new CheckpointException(path, name, "element " + index + " (" + value + ") is beyond the range of "
                + type + (type == DataType.FLOAT16 ? " (max 65504); load it as float32" : ""));
    }

    /**
     * Returns whether a tensor of this file holds the same dtype, shape and bytes as a tensor of another (or the
     * same) file.
     *
     * @param name a tensor of this file
     * @param other the other file
     * @param otherName a tensor of the other file
     * @return true when dtype, shape and data are identical
     * @throws IOException if the data cannot be read
     */
    public boolean sameData(String name, SafetensorsFile other, String otherName) throws IOException {
        TensorInfo a = info(name);
        TensorInfo b = other.info(otherName);
        if (a.getDtype() != b.getDtype() || !a.getShape().equals(b.getShape())) {
            return false;
        }
        return map(a).equals(other.map(b));
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
