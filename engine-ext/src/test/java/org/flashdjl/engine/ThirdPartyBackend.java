package org.flashdjl.engine;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A "dropped-in jar" dense backend, registered only by this module's test
 * {@code META-INF/services/org.flashdjl.ops.attention.AttentionBackend}: it delegates to {@code math}. Its rank
 * (50) is above {@code online}'s, and it supports head dim {@value #HEAD_DIM} only, so {@code auto} picks it for
 * exactly those calls.
 */
public final class ThirdPartyBackend implements AttentionBackend {

    /** The only head dim this backend supports. */
    public static final int HEAD_DIM = 3;

    private static final AtomicLong CALLS = new AtomicLong();

    /** @return how many calls every instance has run, so tests see which backend a path used */
    public static long calls() {
        return CALLS.get();
    }

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return "thirdparty";
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "test: a dropped-in dense backend (math underneath)";
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return 50;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(AttentionProblem problem) {
        return problem.getHeadDim() == HEAD_DIM ? null : "head dim " + problem.getHeadDim() + "; supported: "
                + HEAD_DIM;
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(AttentionProblem problem) {
        CALLS.incrementAndGet();
        return AttentionBackends.get("math").forward(problem);
    }
}
