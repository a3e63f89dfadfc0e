package org.flashdjl.ops.parallel.nccl;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The lifecycle of one rank's {@code ncclComm_t}: non-blocking creation ({@code ncclCommInitRankConfig} with
 * {@code blocking = 0}), finalize + destroy, abort (once; every later use fails with the reason), the state polls
 * and the error texts. Waiting with a deadline is {@link NcclWatchdog}'s.
 */
final class NcclCommunicator {

    private static final Logger logger = LoggerFactory.getLogger(NcclCommunicator.class);

    private final NcclLibrary nccl;
    private final int rank;
    private final int world;
    private final int device;
    private Pointer comm; // null before init and after destroy or abort
    private volatile String abortReason;

    NcclCommunicator(NcclLibrary nccl, int rank, int world, int device) {
        this.nccl = nccl;
        this.rank = rank;
        this.world = world;
        this.device = device;
    }

    /** Returns a fresh {@code ncclUniqueId} ({@code ncclGetUniqueId}). */
    static byte[] newUniqueId(NcclLibrary nccl) {
        NcclLibrary.UniqueId id = new NcclLibrary.UniqueId();
        check(nccl, "ncclGetUniqueId", nccl.ncclGetUniqueId(id));
        id.read();
        return id.internal.clone();
    }

    /** Returns the library's version code ({@code ncclGetVersion}). */
    static int version(NcclLibrary nccl) {
        IntByReference v = new IntByReference();
        check(nccl, "ncclGetVersion", nccl.ncclGetVersion(v));
        return v.getValue();
    }

    /** Checks a call made outside a communicator. */
    static void check(NcclLibrary nccl, String call, int rc) {
        if (rc != NcclLibrary.SUCCESS) {
            throw new ProcessGroupException(call + " failed: NCCL error " + rc + ": " + nccl.ncclGetErrorString(rc));
        }
    }

    /** Starts joining the communicator (the device's context is current); completes asynchronously. */
    void init(byte[] id) {
        NcclLibrary.UniqueId.ByValue uid = new NcclLibrary.UniqueId.ByValue();
        System.arraycopy(id, 0, uid.internal, 0, NcclProcessGroup.UNIQUE_ID_BYTES);
        uid.write();
        NcclLibrary.Config config = new NcclLibrary.Config();
        config.blocking = 0;
        config.write();
        PointerByReference c = new PointerByReference();
        int rc = nccl.ncclCommInitRankConfig(c, world, uid, rank, config);
        comm = c.getValue();
        if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
            throw new ProcessGroupException("ncclCommInitRankConfig on rank " + rank + " (world " + world + ", device "
                    + device + ") failed: " + error(rc));
        }
    }

    NcclLibrary library() {
        return nccl;
    }

    /** The {@code ncclComm_t} for collectives; fails once aborted. */
    Pointer handle(String op) {
        checkNotAborted(op);
        return comm;
    }

    boolean isAborted() {
        return abortReason != null;
    }

    void checkNotAborted(String op) {
        if (abortReason != null) {
            throw new ProcessGroupException(op + " on rank " + rank + " failed: the NCCL communicator was aborted ("
                    + abortReason + ")");
        }
    }

    /**
     * Returns the communicator's asynchronous state ({@code ncclCommGetAsyncError}): {@code SUCCESS},
     * {@code IN_PROGRESS} or an error code; -1 when the query itself failed with the code in {@code failure[0]}.
     */
    int state(int[] failure) {
        IntByReference state = new IntByReference();
        int rc = nccl.ncclCommGetAsyncError(comm, state);
        if (rc != NcclLibrary.SUCCESS) {
            failure[0] = rc;
            return -1;
        }
        return state.getValue();
    }

    /** Aborts the communicator once ({@code ncclCommAbort}); later uses fail with the reason. */
    void abort(String reason) {
        if (abortReason != null) {
            return;
        }
        abortReason = reason;
        logger.error("NCCL rank {}: {}", rank, reason);
        if (comm != null) {
            int rc = nccl.ncclCommAbort(comm);
            if (rc != NcclLibrary.SUCCESS) {
                logger.warn("ncclCommAbort on rank {} returned {}", rank, error(rc));
            }
            comm = null;
        }
    }

    /**
     * Starts {@code ncclCommFinalize}; returns false (after aborting) when NCCL refuses, true when the caller must
     * wait for it and then {@link #destroy()}.
     */
    boolean startFinalize() {
        if (comm == null || abortReason != null) {
            return false;
        }
        int rc = nccl.ncclCommFinalize(comm);
        if (rc == NcclLibrary.SUCCESS || rc == NcclLibrary.IN_PROGRESS) {
            return true;
        }
        nccl.ncclCommAbort(comm);
        comm = null;
        return false;
    }

    /** Destroys a finalized communicator. */
    void destroy() {
        if (comm != null) {
            nccl.ncclCommDestroy(comm);
            comm = null;
        }
    }

    /** Aborts a communicator that never became usable (no reason recorded, nothing logged). */
    void discard() {
        if (comm != null && abortReason == null) {
            nccl.ncclCommAbort(comm);
        }
        comm = null;
    }

    /** Throws for a call that returned neither success nor in-progress. */
    void checkCall(String call, int rc) {
        if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
            throw new ProcessGroupException(call + " on rank " + rank + " failed: " + error(rc)
                    + (comm == null ? "" : " (" + nccl.ncclGetLastError(comm) + ")"));
        }
    }

    /** Returns NCCL's last error message of this communicator, or "". */
    String lastError() {
        String last = comm == null ? "" : nccl.ncclGetLastError(comm);
        return last == null ? "" : last;
    }

    /** Formats an {@code ncclResult_t}. */
    String error(int rc) {
        String name = rc >= 0 && rc < NcclLibrary.RESULT_NAMES.length ? NcclLibrary.RESULT_NAMES[rc] : "ncclResult";
        return name + " (" + rc + "): " + nccl.ncclGetErrorString(rc);
    }
}
