package org.flashdjl.engine;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;

/**
 * A "dropped-in jar" dense backend, registered only by this module's test
 * {@code META-INF/services/org.flashdjl.ops.attention.AttentionBackend}: it delegates to {@code math}.
 */
public final class ThirdPartyBackend implements AttentionBackend {

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
        return AttentionBackends.get("math").forward(problem);
    }
}
