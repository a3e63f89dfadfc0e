package org.flashdjl.ops.parallel.group;

import ai.djl.ndarray.NDArray;

import java.time.Duration;
import java.util.List;

/**
 * A group of ranks that exchange tensors: point-to-point (blocking, asynchronous, batched), all-gather,
 * all-to-all, all-reduce and barrier. One instance per rank; an instance is used by one thread.
 *
 * <p>Semantics shared by every implementation:
 *
 * <ul>
 *   <li>collectives must be called in the same order by every rank (as in NCCL and torch.distributed);
 *   <li>point-to-point messages between a pair of ranks match in posting order;
 *   <li>every wait is bounded by {@link #timeout()}: a peer that is slow, hung or gone makes the wait throw a
 *       {@link ProcessGroupTimeoutException} that names the op, the rank, the peer and the timeout, never hang;
 *   <li>results are new arrays owned by the input tensor's manager (the caller closes them); in-place operations
 *       ({@link #allReduce}, receives) write into the caller's array.
 * </ul>
 *
 * <p>Implementations: {@link LocalProcessGroup} (ranks as threads of one JVM, CPU or any DJL device) and
 * {@code org.flashdjl.ops.parallel.nccl.NcclProcessGroup} (one GPU per rank, NCCL).
 */
public interface ProcessGroup extends AutoCloseable {

    /**
     * Returns this member's rank.
     *
     * @return the rank, {@code 0 <= rank < size()}
     */
    int rank();

    /**
     * Returns the number of ranks.
     *
     * @return the world size, {@code >= 1}
     */
    int size();

    /**
     * Returns the bound on every wait of this group.
     *
     * @return the timeout
     */
    Duration timeout();

    /**
     * Returns the implementation's name for messages and logs, e.g. {@code "local"} or {@code "nccl"}.
     *
     * @return the backend name
     */
    String backendName();

    /**
     * Posts a batch of sends and receives and returns at once; the sends of a batch never wait for this rank's own
     * receives, so a ring exchange (send to {@code rank + 1}, receive from {@code rank - 1}) cannot deadlock.
     * Sent tensors must not be modified and receive buffers must not be read before the work completes.
     *
     * @param ops the operations (each peer a rank other than this one)
     * @return the pending work
     */
    Work batchIsendIrecv(List<P2POp> ops);

    /**
     * Posts a send.
     *
     * @param tensor the tensor to send
     * @param dst the destination rank
     * @return the pending work
     */
    default Work isend(NDArray tensor, int dst) {
        return batchIsendIrecv(List.of(P2POp.send(tensor, dst)));
    }

    /**
     * Posts a receive into a preallocated buffer.
     *
     * @param into a buffer of the sent tensor's shape and dtype
     * @param src the source rank
     * @return the pending work
     */
    default Work irecv(NDArray into, int src) {
        return batchIsendIrecv(List.of(P2POp.recv(into, src)));
    }

    /**
     * Sends a tensor and waits until it left (or was copied).
     *
     * @param tensor the tensor to send
     * @param dst the destination rank
     */
    default void send(NDArray tensor, int dst) {
        isend(tensor, dst).await();
    }

    /**
     * Receives into a preallocated buffer and waits for the data.
     *
     * @param into a buffer of the sent tensor's shape and dtype
     * @param src the source rank
     */
    default void recv(NDArray into, int src) {
        irecv(into, src).await();
    }

    /**
     * Gathers one tensor from every rank.
     *
     * @param tensor this rank's tensor; every rank passes the same dtype (and, for NCCL, the same shape)
     * @return {@code size()} new arrays, index {@code r} holding rank r's tensor, owned by {@code tensor}'s manager
     */
    NDArray[] allGather(NDArray tensor);

    /**
     * Sends chunk {@code j} to rank {@code j} and returns the chunk each rank sent here.
     *
     * @param chunks {@code size()} tensors of one dtype; chunk {@code rank()} stays here. Shapes may differ
     *     between chunks (the receiver learns them with the data).
     * @return {@code size()} new arrays, index {@code j} holding what rank j sent here, owned by
     *     {@code chunks[0]}'s manager
     */
    NDArray[] allToAll(NDArray[] chunks);

    /**
     * Reduces a tensor over all ranks in place; every rank ends with the same values.
     *
     * @param tensor this rank's contribution, overwritten with the result; same shape and dtype on every rank
     * @param op the reduction
     */
    void allReduce(NDArray tensor, ReduceOp op);

    /**
     * Gathers a few host integers from every rank (metadata such as shard lengths).
     *
     * @param values this rank's values; the same count on every rank
     * @return {@code size() * values.length} values, rank-major
     */
    long[] allGatherLongs(long... values);

    /** Waits until every rank reached this call. */
    void barrier();

    /**
     * Marks this group failed so that every rank's pending and future waits fail fast instead of running into the
     * timeout (NCCL: {@code ncclCommAbort}).
     *
     * @param cause why (named in the others' errors)
     */
    void abort(Throwable cause);

    /** Releases this rank's resources; pending messages addressed to it are dropped. */
    @Override
    void close();
}
