package org.flashdjl.kvcache.paged;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.OpScope;

import java.util.Arrays;

/**
 * The pool slots reserved for one step's new tokens by {@link PagedKvCache#reserve}: vLLM's {@code slot_mapping}.
 * Token {@code t} of the step (sequences in the order given, each sequence's tokens in order) goes to slot
 * {@code getSlots()[t] = page * pageSize + row} of every layer's pools viewed as [numPages * pageSize, Hkv, D].
 * Reserve once per step, then {@link PagedKvCache#write write} each layer's K/V with this mapping; close it after
 * the step (it owns the int64 slot array handed to the pools' {@code set}).
 */
public final class SlotMapping implements AutoCloseable {

    private final PagedKvCache cache;
    private final long[] seqIds; // [S]
    private final int[] counts; // [S] tokens reserved per sequence
    private final int[] startPositions; // [S] sequence length before the reservation
    private final long[] slots; // [sum(counts)]
    private final long[] epochs; // [S] each sequence's truncation epoch at the reservation
    private final boolean[] layersWritten; // [numLayers]
    private int layersDone;
    private NDManager manager; // owns slotArray, created on first use
    private NDArray slotArray; // int64 [sum(counts)]
    private NDArray slotArray32; // int32 [sum(counts)], for kernels that store K/V themselves
    private NDArray positionArray32; // int32 [sum(counts)] each token's position in its sequence
    private boolean closed;

    SlotMapping(PagedKvCache cache, long[] seqIds, int[] counts, int[] startPositions, long[] slots, long[] epochs,
            int numLayers) {
        this.cache = cache;
        this.seqIds = seqIds;
        this.counts = counts;
        this.startPositions = startPositions;
        this.slots = slots;
        this.epochs = epochs;
        this.layersWritten = new boolean[numLayers];
    }

    PagedKvCache getCache() {
        return cache;
    }

    long epoch(int i) {
        return epochs[i];
    }

    int count(int i) {
        return counts[i];
    }

    int start(int i) {
        return startPositions[i];
    }

    // Records a layer's write; true exactly once, when the last layer not yet written is.
    boolean markWritten(int layer) {
        if (layersWritten[layer]) {
            return false;
        }
        layersWritten[layer] = true;
        return ++layersDone == layersWritten.length;
    }

    synchronized NDArray slotArray(NDManager parent) {
        if (slotArray == null) {
            slotArray = manager(parent).create(slots, new Shape(slots.length));
            OpScope.keepAll(manager); // lives until close(), whatever scope the first write runs in
        }
        return slotArray;
    }

    // The int32 slots and positions on the pools' device, made once per reservation (one upload each per step).
    synchronized NDArray slotArray32(NDManager parent) {
        if (slotArray32 == null) {
            int[] s = new int[slots.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = Math.toIntExact(slots[i]);
            }
            slotArray32 = manager(parent).create(s);
            OpScope.keepAll(manager);
        }
        return slotArray32;
    }

    synchronized NDArray positionArray32(NDManager parent) {
        if (positionArray32 == null) {
            int[] p = new int[slots.length];
            int row = 0;
            for (int i = 0; i < counts.length; i++) {
                for (int j = 0; j < counts[i]; j++) {
                    p[row++] = startPositions[i] + j;
                }
            }
            positionArray32 = manager(parent).create(p);
            OpScope.keepAll(manager);
        }
        return positionArray32;
    }

    private NDManager manager(NDManager parent) {
        if (closed) {
            throw new IllegalStateException("slot mapping is closed");
        }
        if (manager == null) {
            manager = parent.newSubManager();
        }
        return manager;
    }

    /**
     * Returns the sequences of the reservation.
     *
     * @return a copy of the ids, in token order
     */
    public long[] getSequenceIds() {
        return seqIds.clone();
    }

    /**
     * Returns how many tokens each sequence reserved.
     *
     * @return a copy of the counts [S]
     */
    public int[] getCounts() {
        return counts.clone();
    }

    /**
     * Returns each sequence's length before the reservation, i.e. the position of its first reserved token.
     *
     * @return a copy of the start positions [S]
     */
    public int[] getStartPositions() {
        return startPositions.clone();
    }

    /**
     * Returns the slot of every reserved token.
     *
     * @return a copy of the slots [n]
     */
    public long[] getSlots() {
        return slots.clone();
    }

    /**
     * Returns the number of reserved tokens.
     *
     * @return n, the rows of the K/V that {@link PagedKvCache#write} takes
     */
    public int size() {
        return slots.length;
    }

    /** Frees the slot array (the reservation itself stays: the tokens belong to their sequences). */
    @Override
    public synchronized void close() {
        closed = true;
        if (manager != null) {
            manager.close();
            manager = null;
            slotArray = null;
            slotArray32 = null;
            positionArray32 = null;
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "SlotMapping{seqIds=" + Arrays.toString(seqIds) + ", counts=" + Arrays.toString(counts)
                + ", starts=" + Arrays.toString(startPositions) + ", slots=" + Arrays.toString(slots) + "}";
    }
}
