package org.flashdjl.engine;

import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.paged.PagedAttentionBackend;
import org.flashdjl.ops.paged.PagedAttentionProblem;
import org.flashdjl.ops.paged.PagedPlan;

/**
 * A "dropped-in jar" paged backend that cannot run here, registered only by this module's test
 * {@code META-INF/services/org.flashdjl.ops.paged.PagedAttentionBackend}: the report must list it with its reason,
 * and {@code auto} must pass it by despite its rank.
 */
public final class VendorPagedBackend implements PagedAttentionBackend {

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return "vendor-paged";
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "a vendor's paged kernels";
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return 1000;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return "needs the vendor's driver";
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedPlan plan) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedAttentionProblem problem) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public PlanData prepare(PagedPlan plan, NDManager manager) {
        throw new UnsupportedOperationException("needs the vendor's driver");
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(PagedAttentionProblem problem) {
        throw new UnsupportedOperationException("needs the vendor's driver");
    }
}
