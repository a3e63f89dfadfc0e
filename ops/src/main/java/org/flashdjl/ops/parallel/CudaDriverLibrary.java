package org.flashdjl.ops.parallel;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

/**
 * The few CUDA driver calls {@link NcclProcessGroup} needs (contexts, streams, events, scratch memory), mapped
 * through JNA with raw {@code long} device addresses. The {@code _v2} names are the symbols the {@code cuda.h}
 * macros resolve to. Kept minimal and private to this package: the CUDA package owns the general runtime.
 */
interface CudaDriverLibrary extends Library {

    /** {@code CUDA_SUCCESS}. */
    int SUCCESS = 0;
    /** {@code CUDA_ERROR_NOT_READY}: the stream or event has pending work. */
    int NOT_READY = 600;
    /** {@code CU_STREAM_NON_BLOCKING}: no implicit synchronisation with the legacy default stream. */
    int STREAM_NON_BLOCKING = 1;
    /** {@code CU_EVENT_DISABLE_TIMING}. */
    int EVENT_DISABLE_TIMING = 2;
    /** {@code CU_LIMIT_MAX_L2_FETCH_GRANULARITY}. */
    int LIMIT_MAX_L2_FETCH_GRANULARITY = 5;

    int cuInit(int flags);

    int cuDeviceGetCount(IntByReference count);

    int cuDeviceGet(IntByReference device, int ordinal);

    int cuDevicePrimaryCtxRetain(PointerByReference ctx, int device);

    int cuDevicePrimaryCtxRelease_v2(int device);

    int cuCtxSetCurrent(Pointer ctx);

    int cuCtxSetLimit(int limit, long value);

    int cuStreamCreate(PointerByReference stream, int flags);

    int cuStreamDestroy_v2(Pointer stream);

    int cuStreamSynchronize(Pointer stream);

    int cuStreamGetFlags(Pointer stream, IntByReference flags);

    int cuStreamWaitEvent(Pointer stream, Pointer event, int flags);

    int cuEventCreate(PointerByReference event, int flags);

    int cuEventRecord(Pointer event, Pointer stream);

    int cuEventQuery(Pointer event);

    int cuEventDestroy_v2(Pointer event);

    int cuMemAlloc_v2(LongByReference pointer, long bytes);

    int cuMemFree_v2(long pointer);

    int cuMemcpyHtoD_v2(long dst, Pointer src, long bytes);

    int cuMemcpyDtoH_v2(Pointer dst, long src, long bytes);

    int cuGetErrorString(int error, PointerByReference message);
}
