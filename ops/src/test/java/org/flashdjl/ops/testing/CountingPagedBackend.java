package org.flashdjl.ops.testing;

import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.paged.GatherPagedAttentionBackend;
import org.flashdjl.ops.paged.PagedAttentionBackend;
import org.flashdjl.ops.paged.PagedAttentionProblem;
import org.flashdjl.ops.paged.PagedPlan;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A test paged backend, registered as {@value #NAME} by the test {@code META-INF/services} file (a dropped-in
 * backend): the {@code gather} backend with a count of {@link #prepare} and {@link #forward} calls, so tests see
 * how often a plan is prepared (once per step) and run (once per layer).
 */
public final class CountingPagedBackend implements PagedAttentionBackend {

    /** The registry name. */
    public static final String NAME = "counting";

    private static final AtomicLong PREPARES = new AtomicLong();
    private static final AtomicLong FORWARDS = new AtomicLong();

    private final GatherPagedAttentionBackend gather = new GatherPagedAttentionBackend();

    /** @return how many plans every instance has prepared so far */
    public static long prepares() {
        return PREPARES.get();
    }

    /** @return how many calls every instance has run so far */
    public static long forwards() {
        return FORWARDS.get();
    }

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return NAME;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "test: gather, counting prepare and forward calls";
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return null;
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
        PREPARES.incrementAndGet();
        return gather.prepare(plan, manager);
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(PagedAttentionProblem problem) {
        FORWARDS.incrementAndGet();
        return gather.forward(problem);
    }
}
