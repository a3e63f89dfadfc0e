package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import java.util.HashMap;
import java.util.Map;

/**
 * A {@link SequenceKvStore} with one growable buffer per sequence and layer ({@code [capacity, Hkv, D]},
 * capacity doubling). Simple and exact; a paged store avoids the copies of packing and growth.
 */
public final class ContiguousSequenceKvStore implements SequenceKvStore {

    private final NDManager manager;
    private final int numLayers;
    private final Map<Long, Seq> sequences = new HashMap<>();

    private static final class Seq {
        final NDArray[] keys; // per layer [capacity, Hkv, D]
        final NDArray[] values; // per layer [capacity, Hkv, Dv]
        final long[] written; // per layer tokens written
        long length; // tokens reserved

        Seq(int layers) {
            keys = new NDArray[layers];
            values = new NDArray[layers];
            written = new long[layers];
        }
    }

    /**
     * Creates an empty store.
     *
     * @param manager the parent manager of the storage
     * @param numLayers the number of decoder layers
     */
    public ContiguousSequenceKvStore(NDManager manager, int numLayers) {
        this.manager = manager.newSubManager();
        this.numLayers = numLayers;
    }

    /** {@inheritDoc} */
    @Override
    public int getNumLayers() {
        return numLayers;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void addSequence(long seqId) {
        if (sequences.containsKey(seqId)) {
            throw new IllegalArgumentException("sequence " + seqId + " already exists");
        }
        sequences.put(seqId, new Seq(numLayers));
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void fork(long src, long dst) {
        Seq s = seq(src);
        long written = s.length; // tokens written to every layer
        for (int l = 0; l < numLayers; l++) {
            written = Math.min(written, s.written[l]);
        }
        addSequence(dst);
        Seq d = sequences.get(dst);
        d.length = written;
        for (int l = 0; l < numLayers; l++) {
            if (s.keys[l] != null) {
                d.keys[l] = keep(s.keys[l].duplicate());
                d.values[l] = keep(s.values[l].duplicate());
            }
            d.written[l] = written;
        }
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void free(long seqId) {
        Seq s = sequences.remove(seqId);
        if (s == null) {
            throw new IllegalArgumentException("unknown sequence " + seqId);
        }
        for (int l = 0; l < numLayers; l++) {
            if (s.keys[l] != null) {
                s.keys[l].close();
                s.values[l].close();
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public synchronized boolean contains(long seqId) {
        return sequences.containsKey(seqId);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized long length(long seqId) {
        return seq(seqId).length;
    }

    private Seq seq(long id) {
        Seq s = sequences.get(id);
        if (s == null) {
            throw new IllegalArgumentException("unknown sequence " + id + " (added: " + sequences.keySet() + ")");
        }
        return s;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized long[] reserve(long[] seqIds, int[] counts) {
        if (seqIds.length != counts.length) {
            throw new IllegalArgumentException("seqIds and counts differ in length");
        }
        long[] starts = new long[seqIds.length];
        for (int i = 0; i < seqIds.length; i++) {
            if (counts[i] < 1) {
                throw new IllegalArgumentException("count for sequence " + seqIds[i] + " must be >= 1");
            }
            Seq s = seq(seqIds[i]);
            starts[i] = s.length;
            s.length += counts[i];
        }
        return starts;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized BatchKvView append(int layer, long[] seqIds, int[] counts, NDArray keys, NDArray values) {
        int[] cu = new int[seqIds.length + 1];
        NDList ks = new NDList();
        NDList vs = new NDList();
        long row = 0;
        for (int i = 0; i < seqIds.length; i++) {
            Seq s = seq(seqIds[i]);
            long from = s.written[layer];
            long to = from + counts[i];
            if (to > s.length) {
                throw new IllegalStateException("sequence " + seqIds[i] + " layer " + layer + ": " + counts[i]
                        + " tokens appended but only " + (s.length - from) + " reserved");
            }
            NDIndex src = new NDIndex("{}:{}", row, row + counts[i]);
            grow(s, layer, keys, values, to);
            NDIndex dst = new NDIndex("{}:{}", from, to);
            s.keys[layer].set(dst, keys.get(src));
            s.values[layer].set(dst, values.get(src));
            s.written[layer] = to;
            row += counts[i];
            NDIndex used = new NDIndex("0:{}", to);
            ks.add(s.keys[layer].get(used));
            vs.add(s.values[layer].get(used));
            cu[i + 1] = (int) (cu[i] + to);
        }
        NDArray k = ks.size() == 1 ? ks.get(0) : NDArrays.concat(ks, 0);
        NDArray v = vs.size() == 1 ? vs.get(0) : NDArrays.concat(vs, 0);
        return new PackedKv(k, v, cu);
    }

    private void grow(Seq s, int layer, NDArray keys, NDArray values, long needed) {
        long capacity = s.keys[layer] == null ? 0 : s.keys[layer].getShape().get(0);
        if (needed <= capacity) {
            return;
        }
        long grown = Math.max(needed, Math.max(16, capacity * 2));
        Shape ks = keys.getShape();
        Shape vs = values.getShape();
        NDArray k = keep(manager.zeros(new Shape(grown, ks.get(1), ks.get(2)), keys.getDataType(),
                keys.getDevice()));
        NDArray v = keep(manager.zeros(new Shape(grown, vs.get(1), vs.get(2)), values.getDataType(),
                values.getDevice()));
        if (s.keys[layer] != null) {
            NDIndex used = new NDIndex("0:{}", s.written[layer]);
            if (s.written[layer] > 0) {
                k.set(used, s.keys[layer].get(used));
                v.set(used, s.values[layer].get(used));
            }
            s.keys[layer].close();
            s.values[layer].close();
        }
        s.keys[layer] = k;
        s.values[layer] = v;
    }

    private NDArray keep(NDArray a) {
        NDScope.unregister(a);
        a.attach(manager);
        return a;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized long memoryBytes() {
        long total = 0;
        for (Seq s : sequences.values()) {
            for (int l = 0; l < numLayers; l++) {
                if (s.keys[l] != null) {
                    total += ContiguousKvCache.bytes(s.keys[l]) + ContiguousKvCache.bytes(s.values[l]);
                }
            }
        }
        return total;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void close() {
        sequences.clear();
        manager.close();
    }
}
