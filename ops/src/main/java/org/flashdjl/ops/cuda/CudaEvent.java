package org.flashdjl.ops.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA event without timing ({@code CU_EVENT_DISABLE_TIMING}) of one device's primary context: marks a point of
 * a stream so that another stream can wait for it on the device, or the host can poll it. Destroyed by
 * {@link #close()}.
 */
public final class CudaEvent implements AutoCloseable {

    private final int device;
    private CUevent event;

    private CudaEvent(int device, CUevent event) {
        this.device = device;
        this.event = event;
    }

    /**
     * Creates an event.
     *
     * @param device the CUDA ordinal
     * @return the event; close it
     */
    public static CudaEvent create(int device) {
        CudaRuntime.bind(device);
        CUevent e = new CUevent();
        CudaRuntime.check(JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING),
                "cuEventCreate(cuda:" + device + ")");
        return new CudaEvent(device, e);
    }

    /**
     * Records the event at the current end of a stream ({@code cuEventRecord}).
     *
     * @param stream the stream
     * @return this
     */
    public CudaEvent record(CudaStream stream) {
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuEventRecord(live(), stream.jcuda()), "cuEventRecord");
        return this;
    }

    /**
     * Returns whether the work before the recorded point is done ({@code cuEventQuery}), without waiting.
     *
     * @return true when done (or never recorded), false while pending
     * @throws CudaException for an error of the work before it (e.g. a failed kernel)
     */
    public boolean isComplete() {
        CudaRuntime.bind(device);
        int r = JCudaDriver.cuEventQuery(live());
        if (r == CUresult.CUDA_ERROR_NOT_READY) {
            return false;
        }
        CudaRuntime.check(r, "cuEventQuery");
        return true;
    }

    /** Waits on the host for the recorded point ({@code cuEventSynchronize}). */
    public void synchronize() {
        CudaRuntime.bind(device);
        CudaRuntime.check(JCudaDriver.cuEventSynchronize(live()), "cuEventSynchronize");
    }

    CUevent jcuda() {
        return live();
    }

    private CUevent live() {
        if (event == null) {
            throw new IllegalStateException("CUDA event already closed");
        }
        return event;
    }

    /** Destroys the event; idempotent. */
    @Override
    public void close() {
        CUevent e = event;
        event = null;
        if (e != null) {
            CudaRuntime.bind(device);
            CudaRuntime.check(JCudaDriver.cuEventDestroy(e), "cuEventDestroy");
        }
    }
}
