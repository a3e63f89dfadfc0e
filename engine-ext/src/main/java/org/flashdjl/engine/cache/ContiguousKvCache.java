package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;

import java.util.Collections;

/**
 * The trivial {@link KvCache}: every token stays, in one buffer per tensor whose capacity doubles when full
 * (a {@code maxLength} bound refuses to grow past it). The view is one segment starting at position 0.
 */
public final class ContiguousKvCache implements KvCache {

    private final NDManager manager;
    private final long maxLength;
    private NDArray keyBuffer; // [B, Hkv, capacity, D]
    private NDArray valueBuffer; // [B, Hkv, capacity, Dv]
    private long length;

    /**
     * Creates an empty cache; buffers are allocated on the first append, like the first keys.
     *
     * @param manager the parent manager of the cache's storage
     * @param maxLength the most tokens the cache may hold, or -1 for unbounded
     */
    public ContiguousKvCache(NDManager manager, long maxLength) {
        this.manager = manager.newSubManager();
        this.maxLength = maxLength;
    }

    /** {@inheritDoc} */
    @Override
    public long nextPosition() {
        return length;
    }

    /** {@inheritDoc} */
    @Override
    public long cachedLength() {
        return length;
    }

    /** {@inheritDoc} */
    @Override
    public KvView append(NDArray keys, NDArray values) {
        Checks.checkRank("keys", keys, 4, "[batch, kvHeads, T, headDim]");
        Checks.checkRank("values", values, 4, "[batch, kvHeads, T, valueDim]");
        long t = keys.getShape().get(2);
        if (values.getShape().get(2) != t) {
            throw new IllegalArgumentException("keys " + keys.getShape() + " and values " + values.getShape()
                    + " hold different token counts");
        }
        long needed = length + t;
        if (maxLength >= 0 && needed > maxLength) {
            throw new IllegalStateException("KV cache full: " + length + " tokens cached + " + t + " new > maxLength "
                    + maxLength);
        }
        ensureCapacity(keys, values, needed);
        NDIndex slot = new NDIndex(":, :, {}:{}", length, needed);
        keyBuffer.set(slot, keys);
        valueBuffer.set(slot, values);
        long queryStart = length;
        length = needed;
        NDIndex used = new NDIndex(":, :, 0:{}", length);
        return new KvView(Collections.singletonList(new KvSegment(keyBuffer.get(used), valueBuffer.get(used), 0)),
                queryStart);
    }

    private void ensureCapacity(NDArray keys, NDArray values, long needed) {
        long capacity = keyBuffer == null ? 0 : keyBuffer.getShape().get(2);
        if (needed <= capacity) {
            return;
        }
        long grown = Math.max(needed, Math.max(16, capacity * 2));
        if (maxLength >= 0) {
            grown = Math.min(grown, maxLength);
        }
        NDArray k = alloc(keys, grown);
        NDArray v = alloc(values, grown);
        NDScope.unregister(k, v); // the buffers outlive the caller's step scope
        if (keyBuffer != null) {
            NDIndex used = new NDIndex(":, :, 0:{}", length);
            k.set(used, keyBuffer.get(used));
            v.set(used, valueBuffer.get(used));
            keyBuffer.close();
            valueBuffer.close();
        }
        keyBuffer = k;
        valueBuffer = v;
    }

    private NDArray alloc(NDArray like, long capacity) {
        Shape s = like.getShape();
        DataType type = like.getDataType();
        return manager.zeros(new Shape(s.get(0), s.get(1), capacity, s.get(3)), type, like.getDevice());
    }

    /** {@inheritDoc} */
    @Override
    public long memoryBytes() {
        if (keyBuffer == null) {
            return 0;
        }
        return bytes(keyBuffer) + bytes(valueBuffer);
    }

    static long bytes(NDArray a) {
        return a.getShape().size() * a.getDataType().getNumOfBytes();
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        manager.close();
        keyBuffer = null;
        valueBuffer = null;
    }
}
