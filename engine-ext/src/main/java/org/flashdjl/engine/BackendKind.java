package org.flashdjl.engine;

/** What kind of attention a line of the {@link CapabilityReport} computes, and so what it needs from its caller. */
public enum BackendKind {
    /** Dense or varlen attention over contiguous q, k, v ({@code AttentionBackends}: math, online, flash). */
    DENSE,
    /** Attention over a paged KV cache: pages plus per-sequence page tables ({@code PagedAttentionBackends}). */
    PAGED,
    /** A context-parallel method: the sequence sharded over a process group, a dense backend per block. */
    CONTEXT_PARALLEL
}
