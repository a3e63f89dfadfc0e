package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.parallel.ContextParallelAttention;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.SequenceSharding;

/**
 * {@link ContextParallelism} over an {@code org.flashdjl.ops.parallel} {@link ProcessGroup} (NCCL across
 * processes, or {@code LocalProcessGroup} across threads), computed by {@link ContextParallelAttention}.
 */
public final class ProcessGroupContextParallelism implements ContextParallelism {

    private final ProcessGroup group;
    private final SequenceSharding sharding;

    /**
     * Wraps a group.
     *
     * @param group the process group
     * @param sharding how the sequence is cut over the ranks (the inputs' sharding)
     */
    public ProcessGroupContextParallelism(ProcessGroup group, SequenceSharding sharding) {
        this.group = group;
        this.sharding = sharding;
    }

    /** @return the process group */
    public ProcessGroup getGroup() {
        return group;
    }

    /** @return the sharding of the inputs */
    public SequenceSharding getSharding() {
        return sharding;
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return group.rank();
    }

    /** {@inheritDoc} */
    @Override
    public int getWorldSize() {
        return group.size();
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput attention(NDArray q, NDArray k, NDArray v, AttentionSpec spec, String backend,
            String method) {
        // closed after the call: on GPUs over NCCL it holds device scratch (the results are the caller's arrays)
        try (ContextParallelAttention attn = ContextParallelAttention.builder().optLayout(spec.getLayout())
                .optBackend(backend).optMethod(ContextParallelAttention.Method.of(method)).optSharding(sharding)
                .optConvertToFp32(true).optContextParallelGroup(group).build()) {
            return attn.forward(q, k, v, spec);
        }
    }
}
