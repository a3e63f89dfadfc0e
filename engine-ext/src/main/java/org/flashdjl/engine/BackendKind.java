package org.flashdjl.engine;

/** What kind of attention a registered backend computes, and therefore what it needs from its caller. */
public enum BackendKind {
    /** Dense or varlen attention over contiguous q, k, v ({@code math}, {@code online}, {@code flash}). */
    DENSE,
    /** Attention over a paged KV cache: pages plus per-sequence page tables ({@code paged}). */
    PAGED,
    /** Attention with the sequence sharded over a process group ({@code ring}, {@code ulysses}). */
    CONTEXT_PARALLEL,
    /** A name that resolves to another backend per call ({@code auto}). */
    SELECTOR
}
