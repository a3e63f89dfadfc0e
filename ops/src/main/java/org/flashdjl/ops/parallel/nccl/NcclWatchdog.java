package org.flashdjl.ops.parallel.nccl;

import org.flashdjl.ops.cuda.CudaEvent;
import org.flashdjl.ops.cuda.CudaException;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.ProcessGroupTimeoutException;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The bounded waits of one rank: every wait (communicator init and finalize, a group launch, the completion event
 * of enqueued work) polls the communicator's asynchronous state and the event until the group's timeout; a peer
 * that disappears, hangs or reports an error aborts the communicator and throws a
 * {@link ProcessGroupTimeoutException} or {@link ProcessGroupException} naming the op, the rank, the peers and the
 * timeout.
 */
final class NcclWatchdog {

    private static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(50);
    private static final long PARK_NANOS = TimeUnit.MICROSECONDS.toNanos(20);

    private final NcclCommunicator comm;
    private final int rank;
    private final int world;
    private final int device;
    private final Duration timeout;

    NcclWatchdog(NcclCommunicator comm, int rank, int world, int device, Duration timeout) {
        this.comm = comm;
        this.rank = rank;
        this.world = world;
        this.device = device;
        this.timeout = timeout;
    }

    long deadline() {
        return System.nanoTime() + timeout.toNanos();
    }

    /** Polls the communicator state until it leaves {@code ncclInProgress}. */
    void awaitCommunicator(String op, String peers, long deadline) {
        long start = System.nanoTime();
        int[] failure = new int[1];
        while (true) {
            comm.checkNotAborted(op);
            int s = comm.state(failure);
            if (s == -1) {
                fail(op, peers, "ncclCommGetAsyncError returned " + comm.error(failure[0]));
            }
            if (s == NcclLibrary.SUCCESS) {
                return;
            }
            if (s != NcclLibrary.IN_PROGRESS) {
                fail(op, peers, "NCCL async error " + comm.error(s));
            }
            if (System.nanoTime() - deadline > 0) {
                timedOut(op, peers);
            }
            pause(start);
        }
    }

    /** Polls an event of the communication stream (and the communicator) until the event completes. */
    void awaitEvent(CudaEvent event, String op, String peers) {
        long deadline = deadline();
        long start = System.nanoTime();
        int[] failure = new int[1];
        while (true) {
            comm.checkNotAborted(op);
            boolean done;
            try {
                done = event.isComplete();
            } catch (CudaException e) {
                fail(op, peers, "waiting for the stream: " + e.getMessage());
                return;
            }
            if (done) {
                return;
            }
            int s = comm.state(failure);
            if (s != -1 && s != NcclLibrary.SUCCESS && s != NcclLibrary.IN_PROGRESS) {
                fail(op, peers, "NCCL async error " + comm.error(s));
            }
            if (System.nanoTime() - deadline > 0) {
                timedOut(op, peers);
            }
            pause(start);
        }
    }

    /** Aborts the communicator and throws naming the op and peers. */
    void fail(String op, String peers, String what) {
        String last = comm.lastError();
        String message = op + " on rank " + rank + " with " + peers + " failed: " + what
                + (last.isEmpty() ? "" : " (" + last + ")") + " (NCCL, device " + device + ", world " + world
                + "); the communicator was aborted";
        comm.abort(message);
        throw new ProcessGroupException(message);
    }

    private void timedOut(String op, String peers) {
        String message = op + " on rank " + rank + " timed out after " + format(timeout) + " waiting for " + peers
                + " (NCCL, device " + device + ", world " + world + "); the communicator was aborted";
        comm.abort(message);
        throw new ProcessGroupTimeoutException(message, timeout);
    }

    private static void pause(long start) {
        if (System.nanoTime() - start < SPIN_NANOS) {
            Thread.onSpinWait();
        } else {
            LockSupport.parkNanos(PARK_NANOS);
        }
    }

    static String format(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }
}
