package org.flashdjl.engine.cache;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.kvcache.paged.PagedKvCache;
import org.flashdjl.kvcache.paged.SlotMapping;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedPlan;
import org.flashdjl.ops.paged.PagedAttentionBackends;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A {@link SequenceKvStore} over {@link PagedKvCache} (page pools allocated once, per-sequence page tables, prefix
 * sharing on {@link #fork} with copy-on-write): a step {@link #reserve reserves} slots once for all layers, each
 * layer {@link #append writes} its keys and values into them and attends straight from the pages, with no packed
 * copy.
 *
 * <p>One {@link PagedPlan} per step (FlashInfer's plan / run): the step's page table and query counts are fixed by
 * {@link #reserve}; the first layer's attention builds the plan from them (with the queries' head count and the
 * call's dense backend, which the {@code gather} backend runs) and every later layer of the step reuses it, so
 * the backend's index arrays or device page tables are built once per step. The next {@link #reserve} (or
 * {@link #close}) closes it.
 *
 * <pre>{@code
 * SequenceKvStore store = PagedSequenceKvStore.create(layers, kvHeads, headDim, DataType.FLOAT32, Device.cpu(),
 *         1024, 16, "auto");
 * new BatchGenerator(model, tokenizer, manager, 8, (m, mgr) -> store);
 * }</pre>
 */
public final class PagedSequenceKvStore implements SequenceKvStore {

    private final PagedKvCache cache;
    private final String pagedBackend;
    private final Map<Long, Long> ids = new HashMap<>(); // our sequence id -> the cache's
    private SlotMapping step; // the reservation of the step in progress
    private long[] stepIds; // the cache's ids of that step
    private PageTable stepTable; // their pages, after the reservation
    private int[] stepCounts; // new tokens per sequence of that step
    private PagedPlan plan; // the step's plan, built by its first attention; null before

    /**
     * Wraps a paged cache (this store closes it).
     *
     * @param cache the cache, its layers the model's
     * @param pagedBackend a paged attention backend name ({@code auto}, {@code gather}, {@code cuda})
     */
    public PagedSequenceKvStore(PagedKvCache cache, String pagedBackend) {
        this.cache = cache;
        this.pagedBackend = pagedBackend;
    }

    /**
     * Creates a store with its own paged cache.
     *
     * @param numLayers decoder layers
     * @param kvHeads Hkv
     * @param headDim D
     * @param dataType the pools' dtype
     * @param device the pools' device
     * @param numPages pages per pool
     * @param pageSize tokens per page
     * @param pagedBackend the paged attention backend ({@code auto} picks per call)
     * @return the store
     */
    public static PagedSequenceKvStore create(int numLayers, int kvHeads, int headDim, DataType dataType,
            Device device, int numPages, int pageSize, String pagedBackend) {
        PagedKvCache cache = PagedKvCache.builder().setNumPages(numPages).setPageSize(pageSize).setKvHeads(kvHeads)
                .setHeadDim(headDim).optNumLayers(numLayers).optDataType(dataType).optDevice(device).build();
        return new PagedSequenceKvStore(cache, pagedBackend == null ? PagedAttentionBackends.AUTO : pagedBackend);
    }

    /** @return the paged cache */
    public PagedKvCache getCache() {
        return cache;
    }

    /** {@inheritDoc} */
    @Override
    public int getNumLayers() {
        return cache.getNumLayers();
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void addSequence(long seqId) {
        if (ids.containsKey(seqId)) {
            throw new IllegalArgumentException("sequence " + seqId + " already exists");
        }
        ids.put(seqId, cache.addSequence());
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void fork(long src, long dst) {
        if (ids.containsKey(dst)) {
            throw new IllegalArgumentException("sequence " + dst + " already exists");
        }
        ids.put(dst, cache.fork(id(src)));
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void free(long seqId) {
        cache.free(id(seqId));
        ids.remove(seqId);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized boolean contains(long seqId) {
        return ids.containsKey(seqId);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized long length(long seqId) {
        return cache.getSequenceLength(id(seqId));
    }

    private long id(long seqId) {
        Long id = ids.get(seqId);
        if (id == null) {
            throw new IllegalArgumentException("unknown sequence " + seqId + " (added: " + ids.keySet() + ")");
        }
        return id;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized long[] reserve(long[] seqIds, int[] counts) {
        long[] pids = new long[seqIds.length];
        for (int i = 0; i < seqIds.length; i++) {
            pids[i] = id(seqIds[i]);
        }
        SlotMapping next = cache.reserve(pids, counts); // validates: on a rejection the open step stays as it is
        endStep();
        step = next;
        stepIds = pids;
        stepCounts = counts.clone();
        stepTable = cache.pageTable(pids);
        int[] starts = step.getStartPositions();
        long[] out = new long[starts.length];
        for (int i = 0; i < starts.length; i++) {
            out[i] = starts[i];
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized BatchKvView append(int layer, long[] seqIds, int[] counts, NDArray keys, NDArray values) {
        checkStep(seqIds);
        cache.write(layer, step, keys, values);
        return view(layer);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized BatchKvView append(int layer, long[] seqIds, int[] counts, PagedKvCache.SlotWriter writer) {
        checkStep(seqIds);
        cache.write(layer, step, writer);
        return view(layer);
    }

    private void checkStep(long[] seqIds) {
        if (step == null || seqIds.length != stepIds.length) {
            throw new IllegalStateException("append without a matching reserve for this step");
        }
        for (int i = 0; i < seqIds.length; i++) {
            if (id(seqIds[i]) != stepIds[i]) {
                throw new IllegalStateException("append's sequences differ from the step's reservation");
            }
        }
    }

    private BatchKvView view(int layer) {
        NDArray kPages = cache.getKeyPages(layer);
        NDArray vPages = cache.getValuePages(layer);
        return (q, queryCounts, spec, backend) -> stepPlan(q, queryCounts, backend).forward(q, kPages, vPages, spec);
    }

    // The step's plan: built by the step's first attention, reused by every later layer.
    private synchronized PagedPlan stepPlan(NDArray q, int[] queryCounts, String denseBackend) {
        if (!Arrays.equals(queryCounts, stepCounts)) {
            throw new IllegalArgumentException("query counts " + Arrays.toString(queryCounts)
                    + " differ from the step's reservation " + Arrays.toString(stepCounts)
                    + ": a paged step attends exactly the tokens it reserved");
        }
        int queryHeads = (int) q.getShape().get(1);
        if (plan != null) {
            if (plan.getQueryHeads() != queryHeads || !plan.getDenseBackend().equals(denseBackend)) {
                throw new IllegalArgumentException("this step's plan was built for " + plan.getQueryHeads()
                        + " query heads and dense backend '" + plan.getDenseBackend() + "'; a layer asked for "
                        + queryHeads + " and '" + denseBackend + "' (one plan serves every layer of a step)");
            }
            return plan;
        }
        int[] indptr = new int[queryCounts.length + 1];
        for (int i = 0; i < queryCounts.length; i++) {
            indptr[i + 1] = indptr[i] + queryCounts[i];
        }
        plan = PagedPlan.builder(stepTable).optQoIndptr(indptr).setQueryHeads(queryHeads)
                .setKvHeads(cache.getKvHeads()).setHeadDim(cache.getHeadDim()).optDevice(q.getDevice())
                .optDataType(q.getDataType()).optBackend(pagedBackend).optDenseBackend(denseBackend).build();
        return plan;
    }

    // Closes the step in progress: its plan and its slot array.
    private void endStep() {
        if (plan != null) {
            plan.close();
            plan = null;
        }
        if (step != null) {
            step.close();
            step = null;
        }
    }

    /** {@inheritDoc} */
    @Override
    public long memoryBytes() {
        long total = 0;
        for (int l = 0; l < cache.getNumLayers(); l++) {
            total += ContiguousKvCache.bytes(cache.getKeyPages(l)) + ContiguousKvCache.bytes(cache.getValuePages(l));
        }
        return total;
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void close() {
        endStep();
        cache.close();
    }
}
