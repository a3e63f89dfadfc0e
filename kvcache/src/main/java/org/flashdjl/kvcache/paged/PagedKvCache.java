package org.flashdjl.kvcache.paged;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.paged.PageTable;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A paged KV cache (vLLM's block manager + cache engine): per layer a K and a V page pool
 * [numPages, pageSize, Hkv, D] allocated once, shared by sequences that each own an ordered list of pages.
 *
 * <p><b>Multi-layer protocol.</b> A model appends the same n tokens to every layer, so the allocation is done once
 * per step and the writes per layer: {@link #reserve} grows the sequences and returns a {@link SlotMapping} (one
 * pool slot per new token), then {@link #write write(layer, mapping, k, v)} scatters each layer's K/V into those
 * slots, before that layer's attention reads them. {@link #append} does both for one sequence.
 *
 * <p><b>All or nothing.</b> Every mutating call validates everything (ids, lengths, the number of free pages it
 * needs) before it changes anything: a rejected call ({@link IllegalArgumentException},
 * {@link OutOfPagesException}) leaves allocator, sequences and pool contents as they were.
 *
 * <p><b>Prefix sharing.</b> {@link #fork} gives a new sequence the parent's pages (reference count + 1 each), all
 * of them, a partially filled last page included, and allocates nothing. Copy-on-write happens lazily: a
 * reservation that appends into a page whose count is above 1 first copies that page (all layers, K and V) to a
 * fresh page and drops its reference to the shared one; full pages are never written again, so they stay shared
 * for life. The page a reservation needs for the copy is counted in its all-or-nothing check.
 *
 * <p><b>Pages.</b> A page is free iff its count is 0; {@link #free} drops a sequence's references and returns
 * pages that reach 0 to the free list. With {@link Builder#optPoisonFreedPages poisoning} on, the pools start as
 * NaN and freed pages are refilled with NaN, so tests prove attention never reads outside the page tables.
 *
 * <p>Methods are synchronized; the pools are plain NDArrays that attention reads in place
 * ({@link #getKeyPages}, {@link #pageTable}).
 */
public final class PagedKvCache implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(PagedKvCache.class);

    private final int numPages;
    private final int pageSize;
    private final int kvHeads;
    private final int headDim;
    private final int numLayers;
    private final int maxSequenceLength;
    private final DataType dataType;
    private final Device device;
    private final boolean poison;
    private final NDManager manager; // owns the pools
    private final NDArray[] keyPages; // per layer [numPages, pageSize, Hkv, D]
    private final NDArray[] valuePages; // per layer [numPages, pageSize, Hkv, D]
    private final NDArray[] keySlots; // per layer view [numPages * pageSize, Hkv, D]
    private final NDArray[] valueSlots; // per layer view [numPages * pageSize, Hkv, D]
    private final PageAllocator allocator;
    private final Map<Long, Sequence> sequences = new LinkedHashMap<>();
    private long nextId;
    private volatile boolean closed;

    private PagedKvCache(Builder b) {
        this.numPages = b.numPages;
        this.pageSize = b.pageSize;
        this.kvHeads = b.kvHeads;
        this.headDim = b.headDim;
        this.numLayers = b.numLayers;
        this.maxSequenceLength = b.maxSequenceLength;
        this.dataType = b.dataType;
        this.device = b.device;
        this.poison = b.poison;
        this.manager = device == null ? NDManager.newBaseManager() : NDManager.newBaseManager(device);
        this.keyPages = new NDArray[numLayers];
        this.valuePages = new NDArray[numLayers];
        this.keySlots = new NDArray[numLayers];
        this.valueSlots = new NDArray[numLayers];
        Shape shape = new Shape(numPages, pageSize, kvHeads, headDim);
        Shape flat = new Shape((long) numPages * pageSize, kvHeads, headDim);
        try {
            for (int l = 0; l < numLayers; l++) {
                keyPages[l] = poison ? manager.full(shape, Float.NaN, dataType) : manager.zeros(shape, dataType);
                valuePages[l] = poison ? manager.full(shape, Float.NaN, dataType) : manager.zeros(shape, dataType);
                keySlots[l] = keyPages[l].reshape(flat);
                valueSlots[l] = valuePages[l].reshape(flat);
            }
            OpScope.keepAll(manager); // the pools outlive any step scope open now
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
        this.allocator = new PageAllocator(numPages);
        logger.debug("paged KV cache: {} layers x {} pages x {} tokens, Hkv={}, D={}, {}, poison={}", numLayers,
                numPages, pageSize, kvHeads, headDim, dataType, poison);
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    // ---------------------------------------------------------------- sequences

    /**
     * Adds an empty sequence.
     *
     * @return its id (ids are never reused)
     */
    public synchronized long addSequence() {
        checkOpen();
        long id = nextId++;
        sequences.put(id, new Sequence(id));
        return id;
    }

    /**
     * Forks a sequence: the child shares the parent's pages (reference count + 1; a partially filled last page is
     * copied on the next write into it, by whichever sequence writes first). Allocates nothing.
     *
     * <p>The child gets the tokens the parent has <em>written</em>: every token before the parent's first
     * reserved token that is not yet written to every layer ({@link #write}). Tokens reserved but not yet written
     * stay the parent's step alone, so a fork between {@link #reserve} and the writes never hands the child rows
     * that hold nothing yet; the parent's pending writes land in its own rows, past the child's length (a shared
     * page is copied before either sequence appends into it).
     *
     * @param seqId the parent
     * @return the child's id
     * @throws IllegalArgumentException for an unknown id
     */
    public synchronized long fork(long seqId) {
        checkOpen();
        Sequence parent = sequence(seqId);
        long id = nextId++;
        Sequence child = new Sequence(id);
        child.length = parent.written();
        child.numPages = pagesFor(child.length);
        child.pages = Arrays.copyOf(parent.pages, Math.max(4, parent.pages.length));
        for (int i = 0; i < child.numPages; i++) {
            allocator.retain(child.pages[i]);
        }
        sequences.put(id, child);
        logger.debug("fork {} -> {} ({} tokens, {} shared pages)", seqId, id, child.length, child.numPages);
        return id;
    }

    /**
     * Frees a sequence: drops its page references; pages no other sequence holds return to the pool (refilled with
     * NaN when poisoning is on).
     *
     * @param seqId the sequence
     * @throws IllegalArgumentException for an unknown id
     */
    public synchronized void free(long seqId) {
        checkOpen();
        Sequence seq = sequence(seqId);
        sequences.remove(seqId);
        for (int i = 0; i < seq.numPages; i++) {
            if (allocator.release(seq.pages[i]) && poison) {
                poisonPage(seq.pages[i]);
            }
        }
    }

    /**
     * Shortens a sequence (rejected speculative tokens, beam pruning): pages past the new length lose this
     * sequence's reference and return to the pool when no other sequence holds them. Rows past the new length in
     * the kept last page are never read again and are overwritten by later appends (after a copy if that page is
     * shared). A truncate that drops tokens makes every earlier reservation of the sequence stale: {@link #write}
     * refuses it, since its slots may belong to another sequence by then.
     *
     * @param seqId the sequence
     * @param newLength the new length, {@code 0..getSequenceLength(seqId)}
     * @throws IllegalArgumentException for an unknown id or a length outside that range (state unchanged)
     */
    public synchronized void truncate(long seqId, int newLength) {
        checkOpen();
        Sequence s = sequence(seqId);
        if (newLength < 0 || newLength > s.length) {
            throw new IllegalArgumentException("newLength " + newLength + " is outside 0.." + s.length
                    + " (sequence " + seqId + " has " + s.length + " tokens)");
        }
        int keep = pagesFor(newLength);
        for (int i = keep; i < s.numPages; i++) {
            if (allocator.release(s.pages[i]) && poison) {
                poisonPage(s.pages[i]);
            }
        }
        s.numPages = keep;
        if (newLength < s.length) {
            s.epoch++;
            s.pending.removeIf(r -> r[0] >= newLength);
            for (int[] r : s.pending) {
                r[1] = Math.min(r[1], newLength);
            }
        }
        s.length = newLength;
    }

    /**
     * Reserves {@code n} slots at the end of one sequence.
     *
     * @param seqId the sequence
     * @param n tokens to add, {@code >= 0}
     * @return the slots to write with {@link #write}
     * @throws IllegalArgumentException for an unknown id, a negative count or a length beyond the maximum
     * @throws OutOfPagesException when the pool lacks the pages (state unchanged)
     */
    public SlotMapping reserve(long seqId, int n) {
        return reserve(new long[] {seqId}, new int[] {n});
    }

    /**
     * Reserves slots for one step of several sequences, all or nothing: every sequence grows, or (on any error)
     * none does and no page is taken. Copy-on-write of shared partially filled last pages happens here.
     *
     * @param seqIds distinct sequences
     * @param counts tokens to add to each, {@code >= 0}
     * @return the slots, sequence after sequence
     * @throws IllegalArgumentException for unknown or repeated ids, negative counts, lengths beyond the maximum
     * @throws OutOfPagesException when the pool lacks the pages (state unchanged)
     */
    public synchronized SlotMapping reserve(long[] seqIds, int[] counts) {
        checkOpen();
        Objects.requireNonNull(seqIds, "seqIds");
        Objects.requireNonNull(counts, "counts");
        if (seqIds.length != counts.length) {
            throw new IllegalArgumentException("seqIds (" + seqIds.length + ") and counts (" + counts.length
                    + ") must have the same length");
        }
        // 1. Validate and count pages, without touching anything.
        Sequence[] seqs = new Sequence[seqIds.length];
        boolean[] copy = new boolean[seqIds.length];
        Set<Long> seen = new HashSet<>();
        Map<Integer, Integer> pendingReleases = new HashMap<>();
        int needed = 0;
        int total = 0;
        for (int i = 0; i < seqIds.length; i++) {
            seqs[i] = sequence(seqIds[i]);
            if (!seen.add(seqIds[i])) {
                throw new IllegalArgumentException("sequence id " + seqIds[i] + " appears twice in one reservation");
            }
            int n = counts[i];
            if (n < 0) {
                throw new IllegalArgumentException("counts[" + i + "] = " + n + " must be >= 0");
            }
            long newLength = (long) seqs[i].length + n;
            if (newLength > maxSequenceLength) {
                throw new IllegalArgumentException("appending " + n + " tokens to sequence " + seqIds[i] + " ("
                        + seqs[i].length + " tokens) would reach " + newLength + ", beyond maxSequenceLength "
                        + maxSequenceLength);
            }
            if (n == 0) {
                continue;
            }
            total += n;
            Sequence s = seqs[i];
            if (s.length % pageSize != 0) {
                int last = s.pages[s.numPages - 1];
                int holders = allocator.refCount(last) - pendingReleases.getOrDefault(last, 0);
                if (holders > 1) {
                    copy[i] = true;
                    pendingReleases.merge(last, 1, Integer::sum);
                    needed++;
                }
            }
            needed += pagesFor(newLength) - s.numPages;
        }
        int free = allocator.freeCount();
        if (needed > free) {
            throw new OutOfPagesException("out of pages: reserving " + total + " tokens for sequences "
                    + Arrays.toString(seqIds) + " needs " + needed + " free pages, " + free + " free (of " + numPages
                    + ", page size " + pageSize + "); free or preempt a sequence, or build the cache with more"
                    + " pages", needed, free);
        }
        // 2. Mutate: nothing below can fail on a validated request.
        long[] slots = new long[total];
        int[] starts = new int[seqIds.length];
        long[] epochs = new long[seqIds.length];
        int t = 0;
        for (int i = 0; i < seqIds.length; i++) {
            Sequence s = seqs[i];
            starts[i] = s.length;
            epochs[i] = s.epoch;
            int n = counts[i];
            if (n == 0) {
                continue;
            }
            if (copy[i]) {
                int shared = s.pages[s.numPages - 1];
                int fresh = allocator.allocate();
                copyPage(shared, fresh);
                allocator.release(shared); // still held by another sequence
                s.pages[s.numPages - 1] = fresh;
                logger.debug("copy-on-write: sequence {} page {} -> {}", s.id, shared, fresh);
            }
            int newLength = s.length + n;
            while (s.numPages < pagesFor(newLength)) {
                s.addPage(allocator.allocate());
            }
            for (int j = s.length; j < newLength; j++) {
                slots[t++] = (long) s.pages[j / pageSize] * pageSize + j % pageSize;
            }
            s.pending.add(new int[] {s.length, newLength});
            s.length = newLength;
        }
        return new SlotMapping(this, seqIds.clone(), counts.clone(), starts, slots, epochs, numLayers);
    }

    /**
     * Writes one layer's K and V of a reservation into its slots.
     *
     * @param layer the layer, {@code 0..numLayers-1}
     * @param mapping a reservation of this cache
     * @param k keys [n, Hkv, D], n = {@code mapping.size()}, the cache's dtype and device
     * @param v values [n, Hkv, D]
     * @throws IllegalArgumentException for a bad layer, shape, dtype or device (nothing written)
     * @throws IllegalStateException when a sequence of the mapping was freed or truncated since the reservation
     *     (nothing written: its slots may belong to another sequence now)
     */
    public synchronized void write(int layer, SlotMapping mapping, NDArray k, NDArray v) {
        checkWrite(layer, mapping);
        checkKv("k", k, mapping.size());
        checkKv("v", v, mapping.size());
        if (mapping.size() > 0) {
            NDIndex index = new NDIndex("{}", mapping.slotArray(manager));
            keySlots[layer].set(index, k);
            valueSlots[layer].set(index, v);
        }
        written(layer, mapping);
    }

    /**
     * Writes one layer's K and V of a reservation through an operator that stores them itself (e.g. the fused
     * RoPE + store kernel of {@code TransformerOps.ropeStore}): the writer gets the layer's pools viewed as slots
     * and the reservation's slot and position of every token, and must store every token's key and value at its
     * slot. The tokens count as written afterwards, as with {@link #write(int, SlotMapping, NDArray, NDArray)}.
     *
     * @param layer the layer, {@code 0..numLayers-1}
     * @param mapping a reservation of this cache
     * @param writer stores the K/V
     * @throws IllegalArgumentException for a bad layer or a mapping of another cache (nothing written)
     * @throws IllegalStateException when a sequence of the mapping was freed or truncated since the reservation
     */
    public synchronized void write(int layer, SlotMapping mapping, SlotWriter writer) {
        checkWrite(layer, mapping);
        if (mapping.size() > 0) {
            writer.write(keySlots[layer], valueSlots[layer], mapping.slotArray32(manager),
                    mapping.positionArray32(manager));
        }
        written(layer, mapping);
    }

    /** Stores the keys and values of a reservation's tokens itself (see {@link #write(int, SlotMapping, SlotWriter)}). */
    @FunctionalInterface
    public interface SlotWriter {
        /**
         * Stores every token's key and value.
         *
         * @param keySlots the layer's key pool viewed as slots [numPages * pageSize, Hkv, D]
         * @param valueSlots the layer's value pool, the same view
         * @param slots int32 [n] each token's slot, on the pools' device
         * @param positions int32 [n] each token's position in its sequence, on the pools' device
         */
        void write(NDArray keySlots, NDArray valueSlots, NDArray slots, NDArray positions);
    }

    private void checkWrite(int layer, SlotMapping mapping) {
        checkOpen();
        checkLayer(layer);
        if (mapping.getCache() != this) {
            throw new IllegalArgumentException("the slot mapping belongs to another cache");
        }
        long[] ids = mapping.getSequenceIds();
        for (int i = 0; i < ids.length; i++) {
            Sequence s = sequences.get(ids[i]);
            if (s == null) {
                throw new IllegalStateException("sequence " + ids[i] + " of this slot mapping was freed after the"
                        + " reservation; its slots may belong to another sequence now");
            }
            if (s.epoch != mapping.epoch(i)) {
                throw new IllegalStateException("sequence " + ids[i] + " was truncated after this slot mapping was"
                        + " reserved; its slots may belong to another sequence now: reserve again");
            }
        }
    }

    private void written(int layer, SlotMapping mapping) {
        if (mapping.markWritten(layer)) { // every layer written: the tokens are the sequences' for good
            long[] ids = mapping.getSequenceIds();
            for (int i = 0; i < ids.length; i++) {
                int start = mapping.start(i);
                int end = start + mapping.count(i);
                sequences.get(ids[i]).pending.removeIf(r -> r[0] == start && r[1] <= end);
            }
        }
    }

    /**
     * Appends tokens to a single-layer cache: {@link #reserve} then {@link #write}.
     *
     * @param seqId the sequence
     * @param k keys [n, Hkv, D]
     * @param v values [n, Hkv, D]
     * @throws IllegalStateException when the cache has more than one layer
     */
    public synchronized void append(long seqId, NDArray k, NDArray v) {
        checkOpen();
        if (numLayers != 1) {
            throw new IllegalStateException("the cache has " + numLayers + " layers: use append(seqId, keys, values)"
                    + " with one K/V per layer, or reserve() once per step and write(layer, ...) per layer");
        }
        append(seqId, new NDList(k), new NDList(v));
    }

    /**
     * Appends the same tokens to every layer of one sequence: validates every layer's K/V, reserves once, writes
     * each layer.
     *
     * @param seqId the sequence
     * @param keys one [n, Hkv, D] per layer
     * @param values one [n, Hkv, D] per layer
     * @throws IllegalArgumentException for bad inputs (state unchanged)
     * @throws OutOfPagesException when the pool lacks the pages (state unchanged)
     */
    public synchronized void append(long seqId, NDList keys, NDList values) {
        checkOpen();
        sequence(seqId);
        if (keys.size() != numLayers || values.size() != numLayers) {
            throw new IllegalArgumentException("append needs one K and one V per layer (" + numLayers + "), got "
                    + keys.size() + " keys and " + values.size() + " values");
        }
        Checks.checkRank("k", keys.get(0), 3, "[n, Hkv, D]");
        int n = (int) keys.get(0).getShape().get(0);
        for (int l = 0; l < numLayers; l++) {
            checkKv("keys[" + l + "]", keys.get(l), n);
            checkKv("values[" + l + "]", values.get(l), n);
        }
        try (SlotMapping mapping = reserve(seqId, n)) {
            for (int l = 0; l < numLayers; l++) {
                write(l, mapping, keys.get(l), values.get(l));
            }
        }
    }

    // ---------------------------------------------------------------- page tables

    /**
     * Returns the page table of some sequences, in the order given (rows of the batch).
     *
     * @param seqIds the sequences (at least one)
     * @return the table, host-side, checked against this pool
     * @throws IllegalArgumentException for an unknown id or none
     */
    public synchronized PageTable pageTable(long... seqIds) {
        checkOpen();
        if (seqIds == null || seqIds.length == 0) {
            throw new IllegalArgumentException("pageTable needs at least one sequence id");
        }
        Sequence[] seqs = new Sequence[seqIds.length];
        int[] indptr = new int[seqIds.length + 1];
        for (int i = 0; i < seqIds.length; i++) {
            seqs[i] = sequence(seqIds[i]);
            indptr[i + 1] = indptr[i] + seqs[i].numPages;
        }
        int[] indices = new int[indptr[seqIds.length]];
        int[] last = new int[seqIds.length];
        for (int i = 0; i < seqs.length; i++) {
            System.arraycopy(seqs[i].pages, 0, indices, indptr[i], seqs[i].numPages);
            last[i] = seqs[i].numPages == 0 ? 0 : seqs[i].length - (seqs[i].numPages - 1) * pageSize;
        }
        return PageTable.fromCsr(pageSize, indptr, indices, last, numPages);
    }

    /**
     * Exports the block-table form as int32 NDArrays.
     *
     * @param manager the manager that owns (and places) the arrays
     * @param seqIds the sequences, one row each
     * @return blockTable [B, maxPages] (padded with page 0) and seqLens [B]
     */
    public NDList exportBlockTable(NDManager manager, long... seqIds) {
        return pageTable(seqIds).toBlockTableArrays(manager);
    }

    /**
     * Exports FlashInfer's CSR form as int32 NDArrays.
     *
     * @param manager the manager that owns (and places) the arrays
     * @param seqIds the sequences, one row each
     * @return indptr [B + 1], indices [indptr[B]], lastPageLen [B]
     */
    public NDList exportCsr(NDManager manager, long... seqIds) {
        return pageTable(seqIds).toCsrArrays(manager);
    }

    // ---------------------------------------------------------------- state

    /**
     * Returns a layer's key pages, read in place by paged attention.
     *
     * @param layer the layer
     * @return [numPages, pageSize, Hkv, D]
     */
    public NDArray getKeyPages(int layer) {
        checkOpen();
        checkLayer(layer);
        return keyPages[layer];
    }

    /**
     * Returns a layer's value pages.
     *
     * @param layer the layer
     * @return [numPages, pageSize, Hkv, D]
     */
    public NDArray getValuePages(int layer) {
        checkOpen();
        checkLayer(layer);
        return valuePages[layer];
    }

    /**
     * Returns the number of free pages.
     *
     * @return pages with reference count 0
     */
    public synchronized int getFreePageCount() {
        return allocator.freeCount();
    }

    /**
     * Returns the number of used pages.
     *
     * @return {@code numPages - getFreePageCount()}
     */
    public synchronized int getUsedPageCount() {
        return numPages - allocator.freeCount();
    }

    /**
     * Returns how many sequences hold a page.
     *
     * @param page the page, {@code 0..numPages-1}
     * @return its reference count, 0 when free
     */
    public synchronized int getRefCount(int page) {
        if (page < 0 || page >= numPages) {
            throw new IllegalArgumentException("page " + page + " is out of range: allowed 0.." + (numPages - 1));
        }
        return allocator.refCount(page);
    }

    /**
     * Returns the live sequence ids.
     *
     * @return ids in creation order
     */
    public synchronized long[] getSequenceIds() {
        return sequences.keySet().stream().mapToLong(Long::longValue).toArray();
    }

    /**
     * Returns whether a sequence is live.
     *
     * @param seqId the id
     * @return true if added and not freed
     */
    public synchronized boolean containsSequence(long seqId) {
        return sequences.containsKey(seqId);
    }

    /**
     * Returns a sequence's token count (reserved tokens included).
     *
     * @param seqId the sequence
     * @return its length
     */
    public synchronized int getSequenceLength(long seqId) {
        return sequence(seqId).length;
    }

    /**
     * Returns a sequence's pages in order.
     *
     * @param seqId the sequence
     * @return a copy of its page list
     */
    public synchronized int[] getSequencePages(long seqId) {
        Sequence s = sequence(seqId);
        return Arrays.copyOf(s.pages, s.numPages);
    }

    /**
     * Returns the number of layers.
     *
     * @return numLayers
     */
    public int getNumLayers() {
        return numLayers;
    }

    /**
     * Returns the number of pages per pool.
     *
     * @return numPages
     */
    public int getNumPages() {
        return numPages;
    }

    /**
     * Returns the page size.
     *
     * @return tokens per page
     */
    public int getPageSize() {
        return pageSize;
    }

    /**
     * Returns the number of key/value heads.
     *
     * @return Hkv
     */
    public int getKvHeads() {
        return kvHeads;
    }

    /**
     * Returns the head dim.
     *
     * @return D
     */
    public int getHeadDim() {
        return headDim;
    }

    /**
     * Returns the maximum sequence length.
     *
     * @return the limit ({@link Integer#MAX_VALUE} when unset)
     */
    public int getMaxSequenceLength() {
        return maxSequenceLength;
    }

    /**
     * Returns the pools' dtype.
     *
     * @return the dtype
     */
    public DataType getDataType() {
        return dataType;
    }

    /**
     * Returns the pools' device.
     *
     * @return the device
     */
    public Device getDevice() {
        return keyPages[0].getDevice();
    }

    /**
     * Returns whether free pages are filled with NaN.
     *
     * @return true in poison (debug / test) mode
     */
    public boolean isPoisonFreedPages() {
        return poison;
    }

    /** Frees the pools; later calls throw {@link IllegalStateException}. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            sequences.clear();
            manager.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public synchronized String toString() {
        return "PagedKvCache{layers=" + numLayers + ", pages=" + numPages + " x " + pageSize + ", Hkv=" + kvHeads
                + ", D=" + headDim + ", " + dataType + ", used=" + (numPages - allocator.freeCount())
                + ", sequences=" + sequences.size() + "}";
    }

    // ---------------------------------------------------------------- internals

    private int pagesFor(long tokens) {
        return (int) ((tokens + pageSize - 1) / pageSize);
    }

    private Sequence sequence(long seqId) {
        checkOpen();
        Sequence s = sequences.get(seqId);
        if (s == null) {
            long[] live = sequences.keySet().stream().mapToLong(Long::longValue).limit(16).toArray();
            throw new IllegalArgumentException("unknown sequence id " + seqId + " (never added or already freed);"
                    + " live ids: " + Arrays.toString(live) + (sequences.size() > 16 ? " ..." : ""));
        }
        return s;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the paged KV cache is closed");
        }
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= numLayers) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: allowed 0.." + (numLayers - 1));
        }
    }

    private void checkKv(String name, NDArray x, int n) {
        Checks.checkRank(name, x, 3, "[n, Hkv, D]");
        Shape s = x.getShape();
        if (s.get(0) != n || s.get(1) != kvHeads || s.get(2) != headDim) {
            throw new IllegalArgumentException(name + " must be [" + n + ", " + kvHeads + ", " + headDim
                    + "] ([n, Hkv, D]; cache head dim " + headDim + ", " + kvHeads + " kv heads), got " + s);
        }
        Checks.checkDataType(name, x, Checks.FLOAT_TYPES);
        if (x.getDataType() != dataType) {
            throw new IllegalArgumentException(name + " has dtype " + x.getDataType() + " but the cache holds "
                    + dataType + "; convert it first");
        }
        if (!x.getDevice().equals(getDevice())) {
            throw new IllegalArgumentException(name + " is on " + x.getDevice() + " but the cache is on "
                    + getDevice());
        }
    }

    private void copyPage(int src, int dst) {
        NDIndex from = new NDIndex("{}", src);
        NDIndex to = new NDIndex("{}", dst);
        for (int l = 0; l < numLayers; l++) {
            try (NDArray k = keyPages[l].get(from); NDArray v = valuePages[l].get(from)) {
                keyPages[l].set(to, k);
                valuePages[l].set(to, v);
            }
        }
    }

    private void poisonPage(int page) {
        NDIndex index = new NDIndex("{}", page);
        for (int l = 0; l < numLayers; l++) {
            keyPages[l].set(index, Float.NaN);
            valuePages[l].set(index, Float.NaN);
        }
    }

    /** One sequence: its pages in order, its token count and the reserved tokens not yet written everywhere. */
    private static final class Sequence {
        final long id;
        int[] pages = new int[4];
        int numPages;
        int length; // tokens reserved, written or not
        long epoch; // advanced by each truncate that drops tokens: older reservations are stale
        final List<int[]> pending = new ArrayList<>(); // [start, end) reserved, not yet written to every layer

        Sequence(long id) {
            this.id = id;
        }

        // Tokens 0 .. written() - 1 are written to every layer.
        int written() {
            int w = length;
            for (int[] r : pending) {
                w = Math.min(w, r[0]);
            }
            return w;
        }

        void addPage(int page) {
            if (numPages == pages.length) {
                pages = Arrays.copyOf(pages, pages.length * 2);
            }
            pages[numPages++] = page;
        }
    }

    /** Builds a {@link PagedKvCache}: {@code setX} are required, {@code optX} optional. */
    public static final class Builder {
        private int numPages;
        private int pageSize;
        private int kvHeads;
        private int headDim;
        private int numLayers = 1;
        private int maxSequenceLength = Integer.MAX_VALUE;
        private DataType dataType = DataType.FLOAT32;
        private Device device;
        private boolean poison;

        private Builder() {}

        /**
         * Sets the number of pages per pool.
         *
         * @param numPages {@code >= 1}
         * @return this builder
         */
        public Builder setNumPages(int numPages) {
            this.numPages = numPages;
            return this;
        }

        /**
         * Sets the page size.
         *
         * @param pageSize tokens per page, 1..256 (any value, powers of two or not)
         * @return this builder
         */
        public Builder setPageSize(int pageSize) {
            this.pageSize = pageSize;
            return this;
        }

        /**
         * Sets the number of key/value heads.
         *
         * @param kvHeads Hkv {@code >= 1}
         * @return this builder
         */
        public Builder setKvHeads(int kvHeads) {
            this.kvHeads = kvHeads;
            return this;
        }

        /**
         * Sets the head dim.
         *
         * @param headDim D {@code >= 1}
         * @return this builder
         */
        public Builder setHeadDim(int headDim) {
            this.headDim = headDim;
            return this;
        }

        /**
         * Sets the number of layers (default 1): one K and one V pool each.
         *
         * @param numLayers {@code >= 1}
         * @return this builder
         */
        public Builder optNumLayers(int numLayers) {
            this.numLayers = numLayers;
            return this;
        }

        /**
         * Sets the longest sequence a reservation may produce (default: unlimited but for the pages).
         *
         * @param maxSequenceLength {@code >= 1}
         * @return this builder
         */
        public Builder optMaxSequenceLength(int maxSequenceLength) {
            this.maxSequenceLength = maxSequenceLength;
            return this;
        }

        /**
         * Sets the pools' dtype (default float32).
         *
         * @param dataType float16, float32 or float64 (bfloat16 is refused: it crashes DJL 0.36.0's JNI)
         * @return this builder
         */
        public Builder optDataType(DataType dataType) {
            this.dataType = Objects.requireNonNull(dataType, "dataType");
            return this;
        }

        /**
         * Sets the pools' device (default: the engine's default device).
         *
         * @param device the device
         * @return this builder
         */
        public Builder optDevice(Device device) {
            this.device = device;
            return this;
        }

        /**
         * Fills the pools with NaN at creation and freed pages with NaN again (debug / tests: proves no kernel
         * reads outside its page table).
         *
         * @param poison true to poison
         * @return this builder
         */
        public Builder optPoisonFreedPages(boolean poison) {
            this.poison = poison;
            return this;
        }

        /**
         * Validates and allocates the pools.
         *
         * @return the cache
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         */
        public PagedKvCache build() {
            if (numPages == 0) {
                throw new IllegalArgumentException("numPages must be >= 1: an empty cache (0 pages) cannot hold a"
                        + " token; set it with setNumPages");
            }
            Checks.checkAtLeast("numPages", numPages, 1, "pages per pool");
            PageTable.checkPageSize("pageSize", pageSize);
            Checks.checkAtLeast("kvHeads", kvHeads, 1, "set with setKvHeads");
            Checks.checkAtLeast("headDim", headDim, 1, "set with setHeadDim");
            Checks.checkAtLeast("numLayers", numLayers, 1, "");
            Checks.checkAtLeast("maxSequenceLength", maxSequenceLength, 1, "");
            Checks.checkDataType("dataType", dataType, Checks.FLOAT_TYPES);
            if ((long) numPages * pageSize > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("numPages * pageSize = " + (long) numPages * pageSize
                        + " slots exceeds " + Integer.MAX_VALUE);
            }
            return new PagedKvCache(this);
        }
    }
}
