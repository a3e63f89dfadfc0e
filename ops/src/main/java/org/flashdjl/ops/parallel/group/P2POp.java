package org.flashdjl.ops.parallel.group;

import ai.djl.ndarray.NDArray;

import java.util.Objects;

/**
 * One point-to-point operation of a {@link ProcessGroup#batchIsendIrecv batch}: send a tensor to a peer, or receive
 * from a peer into a preallocated tensor of the sender's shape and dtype.
 *
 * @param kind send or receive
 * @param tensor the tensor to send, or the buffer to receive into (any shape; the same on both sides)
 * @param peer the other rank
 */
public record P2POp(Kind kind, NDArray tensor, int peer) {

    /** The direction of a point-to-point operation. */
    public enum Kind {
        /** Send {@code tensor} to {@code peer}. */
        SEND,
        /** Receive from {@code peer} into {@code tensor}. */
        RECV
    }

    /**
     * Validates the fields.
     *
     * @param kind send or receive
     * @param tensor the tensor or buffer
     * @param peer the other rank
     */
    public P2POp {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(tensor, "tensor");
    }

    /**
     * A send.
     *
     * @param tensor the tensor to send (copied or read before the batch's work completes)
     * @param dst the destination rank
     * @return the operation
     */
    public static P2POp send(NDArray tensor, int dst) {
        return new P2POp(Kind.SEND, tensor, dst);
    }

    /**
     * A receive.
     *
     * @param into the buffer, of the sent tensor's shape and dtype
     * @param src the source rank
     * @return the operation
     */
    public static P2POp recv(NDArray into, int src) {
        return new P2POp(Kind.RECV, into, src);
    }
}
