package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

/**
 * What a continuous-batching step attends to, as returned by {@link SequenceKvStore#append}: each sequence's whole
 * history (its new tokens last). The view runs the attention itself, so a contiguous store can pack copies for
 * varlen attention ({@link PackedKv}) and a paged store can hand page tables to paged attention.
 */
public interface BatchKvView {

    /**
     * Attends the step's queries, each sequence bottom-right aligned over its own keys.
     *
     * @param q packed queries [N, Hq, D], sequence after sequence
     * @param queryCounts queries per sequence (sum N), in the store's sequence order
     * @param spec causal, window, sinks (the layout is ignored: packed)
     * @param backend the attention backend
     * @return the output [N, Hq, Dv]
     */
    AttentionOutput attend(NDArray q, int[] queryCounts, AttentionSpec spec, String backend);
}
