package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

/**
 * A context-parallel process group as the attention blocks see it: this rank holds one shard of the sequence
 * and the group computes attention over the whole sequence ({@code ring}: KV shards passed around and states
 * merged by LSE; {@code ulysses}: all-to-all from sequence shards to head shards and back).
 *
 * <p>The implementation over {@code org.flashdjl.ops.parallel.group.ProcessGroup} / {@code ContextParallelAttention}
 * adapts that module's API to this interface; blocks hold only this interface, so they compile and run without
 * the parallel module (with no group, attention is single-rank).
 */
public interface ContextParallelism {

    /**
     * Returns this process's rank in the group.
     *
     * @return the rank, {@code 0 <= rank < worldSize}
     */
    int getRank();

    /**
     * Returns the number of ranks.
     *
     * @return the world size
     */
    int getWorldSize();

    /**
     * Computes this rank's shard of the attention output.
     *
     * @param q this rank's query shard in the spec's layout
     * @param k this rank's key shard
     * @param v this rank's value shard
     * @param spec what to compute (positions are those of the full sequence)
     * @param backend the dense backend each rank runs on its blocks
     * @param method {@code "ring"} or {@code "ulysses"}
     * @return this rank's output shard (and LSE when the spec asks)
     */
    AttentionOutput attention(NDArray q, NDArray k, NDArray v, AttentionSpec spec, String backend, String method);
}
