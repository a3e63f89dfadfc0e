package org.flashdjl.ops.parallel.nccl;

import java.util.Objects;
import org.flashdjl.ops.parallel.group.P2POp;

/**
 * One point-to-point operation on device memory for {@link NcclProcessGroup#batchIsendIrecv(DeviceP2POp...)}.
 *
 * @param kind send or receive
 * @param buffer the data to send, or where to receive (the same count and type on both sides)
 * @param peer the other rank
 */
public record DeviceP2POp(P2POp.Kind kind, NcclBuffer buffer, int peer) {

    /**
     * Validates the fields.
     *
     * @param kind send or receive
     * @param buffer the buffer
     * @param peer the other rank
     */
    public DeviceP2POp {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(buffer, "buffer");
    }

    /**
     * A send.
     *
     * @param buffer the data
     * @param dst the destination rank
     * @return the operation
     */
    public static DeviceP2POp send(NcclBuffer buffer, int dst) {
        return new DeviceP2POp(P2POp.Kind.SEND, buffer, dst);
    }

    /**
     * A receive.
     *
     * @param buffer where the data goes
     * @param src the source rank
     * @return the operation
     */
    public static DeviceP2POp recv(NcclBuffer buffer, int src) {
        return new DeviceP2POp(P2POp.Kind.RECV, buffer, src);
    }
}
