package org.flashdjl.ops.paged;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Objects;

/**
 * One validated call of a {@link PagedPlan}: one layer's queries and page pools, the spec and the key offset.
 * Every check runs in the constructor, before a backend sees the inputs, and names the bad argument and the
 * allowed values; a backend may rely on all of them.
 */
public final class PagedAttentionProblem {

    private final PagedPlan plan;
    private final NDArray query; // [totalQ, Hq, D]
    private final NDArray keyPages; // [numPages, pageSize, Hkv, D]
    private final NDArray valuePages; // [numPages, pageSize, Hkv, Dv]
    private final AttentionSpec spec;
    private final long keyOffset;
    private final int numPages;
    private final int valueDim;

    PagedAttentionProblem(PagedPlan plan, NDArray query, NDArray keyPages, NDArray valuePages, AttentionSpec spec,
            long keyOffset) {
        this.plan = Objects.requireNonNull(plan, "plan");
        this.query = Objects.requireNonNull(query, "q");
        this.keyPages = Objects.requireNonNull(keyPages, "kPages");
        this.valuePages = Objects.requireNonNull(valuePages, "vPages");
        this.spec = Objects.requireNonNull(spec, "spec");
        this.keyOffset = keyOffset;
        plan.checkOpen();
        Checks.checkDataType("q", query, Checks.FLOAT_TYPES);
        Checks.checkDataType("kPages", keyPages, Checks.FLOAT_TYPES);
        Checks.checkDataType("vPages", valuePages, Checks.FLOAT_TYPES);
        Checks.checkSameDataType("q", query, "kPages", keyPages);
        Checks.checkSameDataType("q", query, "vPages", valuePages);
        Checks.checkSameDevice("q", query, "kPages", keyPages);
        Checks.checkSameDevice("q", query, "vPages", valuePages);
        if (plan.getDataType() != null && query.getDataType() != plan.getDataType()) {
            throw new IllegalArgumentException("q is " + query.getDataType() + " but the plan was built for "
                    + plan.getDataType() + " (PagedPlan.Builder.optDataType)");
        }
        if (!query.getDevice().equals(plan.getDevice())) {
            throw new IllegalArgumentException("q is on " + query.getDevice() + " but the plan was built for "
                    + plan.getDevice() + " (PagedPlan.Builder.optDevice)");
        }
        Checks.checkRank("q", query, 3, "[totalQ, Hq, D] (decode: [batch, Hq, D])");
        Checks.checkRank("kPages", keyPages, 4, "[numPages, pageSize, Hkv, D] (NHD)");
        Checks.checkRank("vPages", valuePages, 4, "[numPages, pageSize, Hkv, Dv] (NHD)");
        Shape qs = query.getShape();
        Shape ks = keyPages.getShape();
        Shape vs = valuePages.getShape();
        if (qs.get(0) != plan.getTotalQueries()) {
            throw new IllegalArgumentException("q has " + qs.get(0) + " rows but the plan has "
                    + plan.getTotalQueries() + " query tokens (qoIndptr[B]); q " + qs);
        }
        if (qs.get(1) != plan.getQueryHeads()) {
            throw new IllegalArgumentException("q has " + qs.get(1) + " heads but the plan was built for "
                    + plan.getQueryHeads() + " query heads; q " + qs);
        }
        if (qs.get(2) != plan.getHeadDim()) {
            throw new IllegalArgumentException("query head dim " + qs.get(2) + " differs from the plan's head dim "
                    + plan.getHeadDim() + "; q " + qs);
        }
        if (ks.get(0) == 0) {
            throw new IllegalArgumentException("empty cache: kPages " + ks + " has 0 pages; a paged cache needs"
                    + " numPages >= 1");
        }
        if (ks.get(1) != plan.getPageTable().getPageSize()) {
            throw new IllegalArgumentException("cache page size " + ks.get(1) + " differs from the page table's "
                    + plan.getPageTable().getPageSize() + "; kPages " + ks + " is [numPages, pageSize, Hkv, D]");
        }
        if (ks.get(3) != qs.get(2)) {
            throw new IllegalArgumentException("head dim mismatch: cache head dim " + ks.get(3) + ", query "
                    + qs.get(2) + " (kPages " + ks + ", q " + qs + ")");
        }
        if (ks.get(2) != plan.getKvHeads()) {
            throw new IllegalArgumentException("cache has " + ks.get(2) + " key/value heads but the plan was built"
                    + " for " + plan.getKvHeads() + "; kPages " + ks);
        }
        if (vs.get(0) != ks.get(0) || vs.get(1) != ks.get(1) || vs.get(2) != ks.get(2)) {
            throw new IllegalArgumentException("vPages " + vs + " must match kPages " + ks
                    + " except the last dim ([numPages, pageSize, Hkv, Dv])");
        }
        if (ks.get(0) > Integer.MAX_VALUE || vs.get(3) == 0) {
            throw new IllegalArgumentException("kPages " + ks + " / vPages " + vs
                    + ": numPages must fit an int and Dv must be > 0");
        }
        this.numPages = (int) ks.get(0);
        this.valueDim = (int) vs.get(3);
        plan.getPageTable().checkFits(numPages);
        if (spec.hasAlibi() && spec.getAlibiSlopes().length != plan.getQueryHeads()) {
            throw new IllegalArgumentException("alibiSlopes has " + spec.getAlibiSlopes().length
                    + " slopes; it needs one per query head (" + plan.getQueryHeads() + ")");
        }
        if (keyOffset < plan.getMinKeyOffset()) {
            int worst = 0;
            for (int b = 0; b < plan.getBatchSize(); b++) {
                if (plan.getQueryLength(b) - plan.getPageTable().getSeqLen(b) == plan.getMinKeyOffset()) {
                    worst = b;
                    break;
                }
            }
            throw new IllegalArgumentException("sequence " + worst + " has " + plan.getQueryLength(worst)
                    + " query tokens but only " + plan.getPageTable().getSeqLen(worst) + " cached keys (+ keyOffset "
                    + keyOffset + "): the queries are the last tokens of the sequence, append them to the cache"
                    + " before attention (keyOffset must be >= " + plan.getMinKeyOffset() + ")");
        }
    }

    /**
     * Returns the plan this call belongs to.
     *
     * @return the plan
     */
    public PagedPlan getPlan() {
        return plan;
    }

    /**
     * Returns the backend's auxiliary data for this plan.
     *
     * @return the plan data
     */
    public PagedAttentionBackend.PlanData getPlanData() {
        return plan.getPlanData();
    }

    /**
     * Returns the queries.
     *
     * @return [totalQ, Hq, D]
     */
    public NDArray getQuery() {
        return query;
    }

    /**
     * Returns the key pages.
     *
     * @return [numPages, pageSize, Hkv, D]
     */
    public NDArray getKeyPages() {
        return keyPages;
    }

    /**
     * Returns the value pages.
     *
     * @return [numPages, pageSize, Hkv, Dv]
     */
    public NDArray getValuePages() {
        return valuePages;
    }

    /**
     * Returns the spec.
     *
     * @return the spec (its layout is ignored)
     */
    public AttentionSpec getSpec() {
        return spec;
    }

    /**
     * Returns the global index of each sequence's first paged key.
     *
     * @return the key offset, 0 for plain paged attention
     */
    public long getKeyOffset() {
        return keyOffset;
    }

    /**
     * Returns the number of pages in the pools.
     *
     * @return numPages
     */
    public int getNumPages() {
        return numPages;
    }

    /**
     * Returns the value head dim.
     *
     * @return Dv
     */
    public int getValueDim() {
        return valueDim;
    }

    /**
     * Returns the softmax scale.
     *
     * @return the spec's scale or {@code 1/sqrt(D)}
     */
    public float getScale() {
        return spec.scaleFor(plan.getHeadDim());
    }

    /**
     * Returns the dtype of queries, pages and output.
     *
     * @return the dtype
     */
    public DataType getDataType() {
        return query.getDataType();
    }

    /**
     * Returns the device of queries and pages.
     *
     * @return the device
     */
    public Device getDevice() {
        return query.getDevice();
    }
}
