package org.flashdjl.ops.cuda;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA stream of one device's primary context, or the legacy default stream ({@link #legacy}, where DJL's
 * eager ops and this library's kernels run). A created stream is destroyed by {@link #close()}; closing the legacy
 * stream does nothing.
 */
public final class CudaStream implements AutoCloseable {

    private final int device;
    private final boolean owned;
    private CUstream stream; // null = the legacy default stream

    private CudaStream(int device, CUstream stream, boolean owned) {
        this.device = device;
        this.stream = stream;
        this.owned = owned;
    }

    /**
     * Returns the legacy default stream (stream 0) of a device: every kernel of this library runs there.
     *
     * @param device the CUDA ordinal
     * @return the stream (nothing to close)
     */
    public static CudaStream legacy(int device) {
        return new CudaStream(device, null, false);
    }

    /**
     * Creates a stream.
     *
     * @param device the CUDA ordinal
     * @param nonBlocking true for {@code CU_STREAM_NON_BLOCKING}: no implicit synchronisation with the legacy
     *     default stream, so its work overlaps kernels there
     * @return the stream; close it
     * @throws CudaException if the driver refuses
     */
    public static CudaStream create(int device, boolean nonBlocking) {
        CudaRuntime.bind(device);
        CUstream s = new CUstream();
        CudaRuntime.check(JCudaDriver.cuStreamCreate(s, nonBlocking ? CUstream_flags.CU_STREAM_NON_BLOCKING
                : CUstream_flags.CU_STREAM_DEFAULT), "cuStreamCreate(cuda:" + device + ")");
        return new CudaStream(device, s, true);
    }

    /**
     * Returns the device ordinal.
     *
     * @return the ordinal
     */
    public int getDevice() {
        return device;
    }

    /**
     * Returns whether this is the legacy default stream.
     *
     * @return true for stream 0
     */
    public boolean isLegacy() {
        return !owned;
    }

    /**
     * Returns the {@code CUstream} handle as an address (for libraries called through JNA, e.g. NCCL).
     *
     * @return the handle, 0 for the legacy default stream
     */
    public long getHandle() {
        return owned ? CudaRuntime.handle(live()) : 0;
    }

    /**
     * Returns the JCuda stream ({@code null} = the legacy default stream), for JCuda calls of this library.
     *
     * @return the stream or null
     */
    CUstream jcuda() {
        return owned ? live() : null;
    }

    /**
     * Returns whether the stream was created with {@code CU_STREAM_NON_BLOCKING} ({@code cuStreamGetFlags}).
     *
     * @return true when non-blocking; false for the legacy default stream
     */
    public boolean isNonBlocking() {
        if (!owned) {
            return false;
        }
        CudaRuntime.bind(device);
        int[] flags = new int[1];
        CudaRuntime.check(JCudaDriver.cuStreamGetFlags(live(), flags), "cuStreamGetFlags");
        return (flags[0] & CUstream_flags.CU_STREAM_NON_BLOCKING) != 0;
    }

    /**
     * Makes this stream wait, on the device, for an event (no host synchronisation).
     *
     * @param event a recorded event
     */
    public void waitFor(CudaEvent event) {
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuStreamWaitEvent(jcuda(), event.jcuda(), 0), "cuStreamWaitEvent");
    }

    /** Waits on the host until the stream's work is done ({@code cuStreamSynchronize}). */
    public void synchronize() {
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuStreamSynchronize(jcuda()), "cuStreamSynchronize");
    }

    private CUstream live() {
        if (stream == null) {
            throw new IllegalStateException("CUDA stream already closed");
        }
        return stream;
    }

    /** Destroys a created stream ({@code cuStreamDestroy}); idempotent, a no-op for the legacy stream. */
    @Override
    public void close() {
        CUstream s = stream;
        stream = null;
        if (owned && s != null) {
            CudaRuntime.bind(device);
            CudaRuntime.check(JCudaDriver.cuStreamDestroy(s), "cuStreamDestroy");
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return owned ? "CudaStream{cuda:" + device + " 0x" + Long.toHexString(getHandle()) + "}"
                : "CudaStream{cuda:" + device + " legacy}";
    }
}
