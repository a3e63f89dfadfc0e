package org.flashdjl.engine.cache;

import ai.djl.ndarray.NDArray;

import org.flashdjl.kvcache.paged.PagedKvCache;

/**
 * The KV storage of many sequences of different lengths for all decoder layers: what continuous batching needs
 * (sequences join, grow and finish independently). A paged cache ({@code PagedKvCache}: page pool and page
 * tables, prefix sharing on fork) and {@link ContiguousSequenceKvStore} implement it.
 *
 * <p>One model step over a batch of sequences: {@link #reserve} once (returns each sequence's first new
 * position and advances its length), then per layer {@link #append} with the new tokens packed in the same
 * sequence order, attending over the returned {@link BatchKvView}.
 */
public interface SequenceKvStore extends AutoCloseable {

    /** @return the number of layers */
    int getNumLayers();

    /**
     * Adds an empty sequence.
     *
     * @param seqId a new id
     * @throws IllegalArgumentException if the id is in use
     */
    void addSequence(long seqId);

    /**
     * Adds {@code dst} as a copy of {@code src}'s written tokens (a paged store shares the pages instead of
     * copying). Tokens {@code src} has reserved but not yet written to every layer stay {@code src}'s: a fork in
     * the middle of a step copies the history before that step.
     *
     * @param src an existing sequence
     * @param dst a new id
     */
    void fork(long src, long dst);

    /**
     * Frees a sequence's storage.
     *
     * @param seqId the sequence
     */
    void free(long seqId);

    /**
     * Returns whether a sequence exists.
     *
     * @param seqId the id
     * @return true if added and not freed
     */
    boolean contains(long seqId);

    /**
     * Returns the number of tokens stored for a sequence (reserved ones included).
     *
     * @param seqId the sequence
     * @return its length
     */
    long length(long seqId);

    /**
     * Reserves room for new tokens: sequence {@code seqIds[i]} grows by {@code counts[i]}.
     *
     * @param seqIds the step's sequences, distinct
     * @param counts new tokens per sequence, {@code >= 1}
     * @return the position of each sequence's first new token
     */
    long[] reserve(long[] seqIds, int[] counts);

    /**
     * Writes one layer's keys and values of the reserved tokens and returns what the step's queries attend to
     * (each sequence's whole history, its new tokens last).
     *
     * @param layer the layer index
     * @param seqIds the step's sequences, as given to {@link #reserve}
     * @param counts new tokens per sequence, as given to {@link #reserve}
     * @param keys packed new keys [sum(counts), kvHeads, headDim], already rotated
     * @param values packed new values [sum(counts), kvHeads, valueDim]
     * @return the sequences' history, which runs the attention (valid until the next append)
     */
    BatchKvView append(int layer, long[] seqIds, int[] counts, NDArray keys, NDArray values);

    /**
     * Writes one layer's keys and values of the reserved tokens through an operator that stores them itself (the
     * fused RoPE + store kernel, {@code TransformerOps.ropeStore}: rotated keys go straight into the pages), and
     * returns what the step's queries attend to, as {@link #append} does. A store that only takes packed keys and
     * values returns null without calling the writer; the caller then uses {@link #append}.
     *
     * @param layer the layer index
     * @param seqIds the step's sequences, as given to {@link #reserve}
     * @param counts new tokens per sequence, as given to {@link #reserve}
     * @param writer stores every reserved token's key and value at its slot
     * @return the sequences' history (valid until the next append), or null when the store takes no writer
     */
    default BatchKvView append(int layer, long[] seqIds, int[] counts, PagedKvCache.SlotWriter writer) {
        return null;
    }

    /** @return the bytes of KV storage held */
    long memoryBytes();

    /** Frees all storage. */
    @Override
    void close();
}
