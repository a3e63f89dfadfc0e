package org.flashdjl.ops.parallel.nccl;

import com.sun.jna.Pointer;

import org.flashdjl.ops.cuda.CudaEvent;
import org.flashdjl.ops.cuda.CudaException;
import org.flashdjl.ops.cuda.CudaStream;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CUDA side of one rank (from the {@code org.flashdjl.ops.cuda} runtime): the non-blocking communication
 * stream NCCL runs on, the data stream whose writes each operation waits for (an event, no host synchronisation),
 * the completion events of enqueued work, and a small scratch buffer for the group's own collectives.
 */
final class NcclStreams implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(NcclStreams.class);

    private final int device;
    private final CudaStream stream; // communication stream, non-blocking
    private final Pointer handle; // the same as NCCL's cudaStream_t
    private final CudaEvent dataEvent; // orders the communication stream after the data stream
    private CudaStream dataStream; // the legacy default stream unless set
    private DeviceBuffer scratch; // null until needed

    NcclStreams(int device) {
        this.device = device;
        this.dataStream = CudaStream.legacy(device);
        this.stream = CudaStream.create(device, true);
        try {
            this.dataEvent = CudaEvent.create(device);
        } catch (RuntimeException e) {
            stream.close();
            throw e;
        }
        this.handle = new Pointer(stream.getHandle());
    }

    /** The communication stream as NCCL's {@code cudaStream_t}. */
    Pointer handle() {
        return handle;
    }

    CudaStream stream() {
        return stream;
    }

    void setDataStream(CudaStream data) {
        this.dataStream = data == null ? CudaStream.legacy(device) : data;
    }

    /** Makes the communication stream wait (on the device) for the work queued so far on the data stream. */
    void orderAfterData() {
        orderAfter(dataStream);
    }

    /** Makes the communication stream wait (on the device) for the work queued so far on another stream. */
    void orderAfter(CudaStream other) {
        dataEvent.record(other);
        stream.waitFor(dataEvent);
    }

    /** Returns a new event recorded after the work enqueued so far on the communication stream (close it). */
    CudaEvent markCompletion() {
        CudaEvent e = CudaEvent.create(device);
        try {
            return e.record(stream);
        } catch (RuntimeException ex) {
            e.close();
            throw ex;
        }
    }

    /** The scratch buffer, grown to at least {@code bytes} (the old one is idle: its collectives were awaited). */
    DeviceBuffer scratch(long bytes) {
        if (scratch == null || scratch.getByteSize() < bytes) {
            if (scratch != null) {
                scratch.close();
                scratch = null;
            }
            scratch = DeviceBuffer.allocate(device, Math.max(bytes, 4096));
        }
        return scratch;
    }

    /** Frees the scratch, the event and the stream (failures are logged: this runs while tearing down). */
    @Override
    public void close() {
        try {
            if (scratch != null) {
                scratch.close();
                scratch = null;
            }
            dataEvent.close();
            stream.close();
        } catch (CudaException e) {
            logger.warn("releasing the NCCL stream, event or scratch of cuda:{} failed: {}", device, e.getMessage());
        }
    }
}
