package org.flashdjl.ops.parallel.nccl;

import org.flashdjl.ops.cuda.DeviceDataType;
import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import java.util.List;

/**
 * The part of {@code nccl.h} (NCCL 2.17+; tested against 2.28) that {@link NcclProcessGroup} calls, mapped
 * through JNA. Every function returns an {@code ncclResult_t}. {@code size_t} counts are Java {@code long}
 * (x86-64 Linux, LP64); {@code ncclComm_t}, {@code cudaStream_t} and device buffers are {@link Pointer}s.
 */
interface NcclLibrary extends Library {

    /**
     * Maps a device dtype to its {@code ncclDataType_t} value.
     *
     * @param type the dtype
     * @return the NCCL code
     * @throws IllegalArgumentException for a dtype NCCL has no type for
     */
    static int dataType(DeviceDataType type) {
        switch (type) {
            case INT8:
                return 0; // ncclInt8
            case UINT8:
                return 1; // ncclUint8
            case INT32:
                return 2; // ncclInt32
            case INT64:
                return 4; // ncclInt64
            case FP16:
                return 6; // ncclFloat16
            case FP32:
                return 7; // ncclFloat32
            case FP64:
                return 8; // ncclFloat64
            case BF16:
                return 9; // ncclBfloat16
            default:
                throw new IllegalArgumentException("NCCL has no data type for " + type);
        }
    }


    /** {@code ncclSuccess}. */
    int SUCCESS = 0;
    /** {@code ncclInProgress}: a non-blocking communicator is still working. */
    int IN_PROGRESS = 7;

    /** Names of {@code ncclResult_t} values. */
    String[] RESULT_NAMES = {"ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError", "ncclInternalError",
        "ncclInvalidArgument", "ncclInvalidUsage", "ncclRemoteError", "ncclInProgress", "ncclTimeout"};

    /**
     * {@code ncclUniqueId}: {@code struct { char internal[128]; }}, passed by pointer to
     * {@code ncclGetUniqueId} and by value to {@code ncclCommInitRankConfig} ({@link ByValue}).
     */
    class UniqueId extends Structure {
        /** The id's bytes. */
        public byte[] internal = new byte[NcclProcessGroup.UNIQUE_ID_BYTES];

        /** {@inheritDoc} */
        @Override
        protected List<String> getFieldOrder() {
            return List.of("internal");
        }

        /** The by-value form (JNA copies the 128 bytes into the call frame). */
        public static class ByValue extends UniqueId implements Structure.ByValue {}
    }

    /**
     * The {@code ncclConfig_t} prefix of NCCL 2.17 ({@code size, magic, version, blocking, cgaClusterSize, minCTAs,
     * maxCTAs, netName}). NCCL copies {@code size} bytes and treats fields newer than {@code version} as unset, so
     * this prefix stays valid with newer libraries.
     */
    class Config extends Structure {
        /** {@code sizeof} this struct. */
        public long size;
        /** {@code NCCL_API_MAGIC}. */
        public int magic = 0xcafebeef;
        /** {@code NCCL_VERSION(2, 17, 0)}: the layout this struct follows. */
        public int version = 21700;
        /** 0 = non-blocking communicator. */
        public int blocking = Integer.MIN_VALUE;
        /** Unset. */
        public int cgaClusterSize = Integer.MIN_VALUE;
        /** Unset. */
        public int minCTAs = Integer.MIN_VALUE;
        /** Unset. */
        public int maxCTAs = Integer.MIN_VALUE;
        /** Unset. */
        public Pointer netName;

        /** Creates an initialised config ({@code NCCL_CONFIG_INITIALIZER} for this layout). */
        public Config() {
            size = size();
        }

        /** {@inheritDoc} */
        @Override
        protected List<String> getFieldOrder() {
            return List.of("size", "magic", "version", "blocking", "cgaClusterSize", "minCTAs", "maxCTAs", "netName");
        }
    }

    int ncclGetVersion(IntByReference version);

    int ncclGetUniqueId(UniqueId uniqueId);

    int ncclCommInitRankConfig(PointerByReference comm, int nranks, UniqueId.ByValue commId, int rank,
            Config config);

    int ncclCommGetAsyncError(Pointer comm, IntByReference asyncError);

    int ncclCommFinalize(Pointer comm);

    int ncclCommDestroy(Pointer comm);

    int ncclCommAbort(Pointer comm);

    String ncclGetErrorString(int result);

    String ncclGetLastError(Pointer comm);

    int ncclGroupStart();

    int ncclGroupEnd();

    int ncclSend(Pointer sendbuff, long count, int datatype, int peer, Pointer comm, Pointer stream);

    int ncclRecv(Pointer recvbuff, long count, int datatype, int peer, Pointer comm, Pointer stream);

    int ncclAllGather(Pointer sendbuff, Pointer recvbuff, long sendcount, int datatype, Pointer comm,
            Pointer stream);

    int ncclAllReduce(Pointer sendbuff, Pointer recvbuff, long count, int datatype, int op, Pointer comm,
            Pointer stream);
}
