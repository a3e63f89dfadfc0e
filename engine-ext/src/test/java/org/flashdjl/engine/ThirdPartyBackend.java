package org.flashdjl.engine;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A "dropped-in jar" dense backend, registered only by this module's test
 * {@code META-INF/services/org.flashdjl.ops.attention.AttentionBackend}: it delegates to {@code math}.
 */
public final class ThirdPartyBackend implements AttentionBackend {

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
    public String unavailableReason() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(AttentionProblem problem) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(AttentionProblem problem) {
        CALLS.incrementAndGet();
        return AttentionBackends.get("math").forward(problem);
    }
}
