package org.flashdjl.ops.parallel.nccl;

import ai.djl.ndarray.NDArray;

import com.sun.jna.Pointer;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.cuda.CudaEvent;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.CudaStream;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.parallel.group.P2POp;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.ProcessGroupTimeoutException;
import org.flashdjl.ops.parallel.group.ReduceOp;
import org.flashdjl.ops.parallel.group.Work;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A {@link ProcessGroup} over NCCL ({@code libnccl.so.2}, called through JNA): one rank per GPU, either one process
 * per GPU ({@link #create}, usually through {@link Distributed#init()}) or one process driving several GPUs from one
 * thread each ({@link #createAll}).
 *
 * <p><b>Buffers.</b> NCCL moves device memory: the primary API takes {@link NcclBuffer}s (raw CUDA addresses,
 * element count, type). The {@link ProcessGroup} NDArray methods convert NDArrays with {@link NcclBuffer#of(NDArray)}
 * (the CUDA package's device view of PyTorch-engine NDArrays: dense, contiguous, float16/float32/int32, on this
 * group's GPU).
 *
 * <p><b>Parts.</b> {@code NcclCommunicator} (the {@code ncclComm_t} lifecycle), {@code NcclStreams} (communication
 * stream, ordering and completion events, scratch: the {@code org.flashdjl.ops.cuda} runtime),
 * {@code NcclWatchdog} (bounded waits and abort), {@code NcclNDArrays} (the NDArray collectives); this class holds
 * the raw collectives on device memory.
 *
 * <p><b>Streams.</b> Communication runs on this group's own non-blocking stream, so it overlaps kernels on other
 * streams (ring attention posts the next transfer, then computes). Before each operation the communication stream
 * waits (an event, no host sync) for the data stream ({@link #setDataStream}, default the legacy default stream,
 * where DJL runs its ops): buffers written there before the call are what gets sent. Receive buffers may be read
 * once {@link Work#await()} (or a blocking call) returned.
 *
 * <p><b>Timeouts and failures.</b> The communicator is created non-blocking ({@code ncclConfig_t.blocking = 0}):
 * no NCCL call blocks the caller. Every wait (communicator init, group launch, stream completion) polls
 * {@code ncclCommGetAsyncError} and the completion event until {@link #timeout()}; a peer that disappears, hangs or
 * reports an error makes the wait call {@code ncclCommAbort} and throw a {@link ProcessGroupTimeoutException} or
 * {@link ProcessGroupException} naming the op, the rank, the peer(s) and the timeout. After that the group is
 * unusable (every call fails at once) and the process should exit.
 *
 * <p>Instances are not thread-safe: one thread drives one rank. Set {@code NCCL_NVLS_ENABLE=0} in the environment
 * before the JVM starts (see {@link Distributed}).
 */
public final class NcclProcessGroup implements ProcessGroup {

    /** Size of {@code ncclUniqueId}. */
    public static final int UNIQUE_ID_BYTES = 128;

    private static final Logger logger = LoggerFactory.getLogger(NcclProcessGroup.class);

    private final int rank;
    private final int world;
    private final int device;
    private final Duration timeout;
    private final NcclLibrary nccl;
    private final NcclCommunicator comm;
    private final NcclWatchdog watchdog;
    private final NcclStreams streams;
    private final NcclNDArrays ndArrays;
    private boolean closed;

    private NcclProcessGroup(int rank, int world, int device, Duration timeout) {
        this.rank = rank;
        this.world = world;
        this.device = device;
        this.timeout = timeout;
        this.nccl = NcclLoader.nccl();
        this.comm = new NcclCommunicator(nccl, rank, world, device);
        this.watchdog = new NcclWatchdog(comm, rank, world, device, timeout);
        this.streams = new NcclStreams(device);
        this.ndArrays = new NcclNDArrays(this);
    }

    /**
     * Returns why NCCL cannot run in this process (no CUDA driver, no device, no {@code libnccl.so.2}), or null.
     *
     * @return the reason or null
     */
    public static String unavailableReason() {
        return NcclLoader.unavailableReason();
    }

    /**
     * Returns the number of CUDA devices the driver reports, 0 without a driver.
     *
     * @return the device count
     */
    public static int deviceCount() {
        return CudaRuntime.isAvailable() ? CudaRuntime.getDeviceCount() : 0;
    }

    /**
     * Returns the NCCL library's version code, e.g. 22803 for 2.28.3.
     *
     * @return the version code
     */
    public static int ncclVersion() {
        return NcclCommunicator.version(NcclLoader.nccl());
    }

    /**
     * Creates a new NCCL unique id ({@code ncclGetUniqueId}); rank 0 makes it and every rank passes it to
     * {@link #create}.
     *
     * @return the 128 id bytes
     */
    public static byte[] newUniqueId() {
        return NcclCommunicator.newUniqueId(NcclLoader.nccl());
    }

    /**
     * Joins a communicator as one rank of a multi-process group (one process per GPU). Returns when every rank
     * joined, or throws when they did not within the timeout.
     *
     * @param rank this process's rank
     * @param world the number of ranks
     * @param device the CUDA device ordinal of this rank
     * @param uniqueId the id from rank 0's {@link #newUniqueId()} (see {@link NcclRendezvous})
     * @param timeout the bound on every wait
     * @return the group
     * @throws ProcessGroupTimeoutException when the other ranks did not join in time
     */
    public static NcclProcessGroup create(int rank, int world, int device, byte[] uniqueId, Duration timeout) {
        checkArgs(rank, world, device, timeout);
        if (uniqueId == null || uniqueId.length != UNIQUE_ID_BYTES) {
            throw new IllegalArgumentException("uniqueId must have " + UNIQUE_ID_BYTES + " bytes (ncclUniqueId), got "
                    + (uniqueId == null ? "null" : uniqueId.length));
        }
        NcclProcessGroup g = new NcclProcessGroup(rank, world, device, timeout);
        try {
            g.makeCurrent();
            g.comm.init(uniqueId);
            g.watchdog.awaitCommunicator("ncclCommInitRankConfig", "the other ranks", g.watchdog.deadline());
            logger.info("NCCL {} rank {}/{} on device {} ready (timeout {})", ncclVersion(), rank, world, device,
                    timeout);
            return g;
        } catch (RuntimeException e) {
            g.releaseAfterFailure();
            throw e;
        }
    }

    /**
     * Creates one group per device in this process (single-process multi-GPU, like {@code ncclCommInitAll}, but
     * with non-blocking communicators so every wait is bounded). Drive each group from its own thread.
     *
     * @param devices the CUDA device ordinals; rank i uses devices[i]
     * @param timeout the bound on every wait
     * @return the groups, index = rank
     */
    public static List<NcclProcessGroup> createAll(int[] devices, Duration timeout) {
        Checks.checkAtLeast("devices.length", devices.length, 1, "one rank per device");
        byte[] id = newUniqueId();
        List<NcclProcessGroup> groups = new ArrayList<>();
        NcclLibrary nccl = NcclLoader.nccl();
        try {
            for (int r = 0; r < devices.length; r++) {
                checkArgs(r, devices.length, devices[r], timeout);
                groups.add(new NcclProcessGroup(r, devices.length, devices[r], timeout));
            }
            NcclCommunicator.check(nccl, "ncclGroupStart", nccl.ncclGroupStart());
            try {
                for (NcclProcessGroup g : groups) {
                    g.makeCurrent();
                    g.comm.init(id);
                }
            } finally {
                int rc = nccl.ncclGroupEnd();
                if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
                    NcclCommunicator.check(nccl, "ncclGroupEnd (communicator init)", rc);
                }
            }
            for (NcclProcessGroup g : groups) {
                g.makeCurrent();
                g.watchdog.awaitCommunicator("ncclCommInitRankConfig", "the other ranks", g.watchdog.deadline());
            }
            return Collections.unmodifiableList(groups);
        } catch (RuntimeException e) {
            for (NcclProcessGroup g : groups) {
                g.releaseAfterFailure();
            }
            throw e;
        }
    }

    private static void checkArgs(int rank, int world, int device, Duration timeout) {
        Checks.checkAtLeast("world", world, 1, "number of ranks");
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " is outside the world of " + world + " ranks; allowed: 0.."
                    + (world - 1));
        }
        int count = deviceCount();
        if (device < 0 || device >= count) {
            throw new IllegalArgumentException("CUDA device " + device + " does not exist; this machine has " + count
                    + " device(s): allowed 0.." + (count - 1));
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isZero() || timeout.isNegative()) {
            throw new IllegalArgumentException("timeout must be > 0, got " + timeout);
        }
    }

    /** {@inheritDoc} */
    @Override
    public int rank() {
        return rank;
    }

    /** {@inheritDoc} */
    @Override
    public int size() {
        return world;
    }

    /** {@inheritDoc} */
    @Override
    public Duration timeout() {
        return timeout;
    }

    /** {@inheritDoc} */
    @Override
    public String backendName() {
        return "nccl";
    }

    /**
     * Returns this rank's CUDA device ordinal.
     *
     * @return the device
     */
    public int device() {
        return device;
    }

    /**
     * Returns whether the communication stream is non-blocking ({@code cuStreamGetFlags} reports
     * {@code CU_STREAM_NON_BLOCKING}): only then do transfers overlap kernels on the legacy default stream, which
     * synchronises with every blocking stream.
     *
     * @return true when the stream was created non-blocking
     */
    public boolean isCommunicationStreamNonBlocking() {
        enter("isCommunicationStreamNonBlocking");
        return streams.stream().isNonBlocking();
    }

    /**
     * Sets the stream whose work every operation waits for before it reads or writes buffers (default: the legacy
     * default stream, where DJL's eager ops and this library's kernels run).
     *
     * @param stream a stream of this group's device, or null for the legacy default stream
     */
    public void setDataStream(CudaStream stream) {
        if (stream != null && stream.getDevice() != device) {
            throw new IllegalArgumentException("the data stream is on cuda:" + stream.getDevice() + " but rank " + rank
                    + " of this NCCL group uses cuda:" + device);
        }
        streams.setDataStream(stream);
    }

    // ---------------------------------------------------------------- raw collectives on device memory

    /**
     * Posts sends and receives on device memory as one NCCL group ({@code ncclGroupStart}, {@code ncclSend} /
     * {@code ncclRecv}, {@code ncclGroupEnd}): a ring exchange cannot deadlock. Returns once they are enqueued on
     * the communication stream.
     *
     * @param ops the operations
     * @return the pending work; receive buffers are valid after {@link Work#await()}
     */
    public Work batchIsendIrecv(DeviceP2POp... ops) {
        String op = "batchIsendIrecv";
        enter(op);
        StringBuilder peers = new StringBuilder();
        for (DeviceP2POp o : ops) {
            checkPeer(op, o.peer());
            peers.append(peers.length() == 0 ? "" : ", ").append(o.kind() == P2POp.Kind.SEND ? "send to " : "recv from ")
                    .append(o.peer());
        }
        String peerText = "rank(s) [" + peers + "]";
        long deadline = watchdog.deadline();
        streams.orderAfterData();
        Pointer c = comm.handle(op);
        launchGroup(op, peerText, deadline, () -> {
            for (DeviceP2POp o : ops) {
                NcclBuffer b = o.buffer();
                if (b.count() == 0) {
                    continue; // both sides know the count: an empty message is no message
                }
                int rc = o.kind() == P2POp.Kind.SEND
                        ? nccl.ncclSend(ptr(b), b.count(), NcclLibrary.dataType(b.type()), o.peer(), c, streams.handle())
                        : nccl.ncclRecv(ptr(b), b.count(), NcclLibrary.dataType(b.type()), o.peer(), c, streams.handle());
                comm.checkCall(o.kind() == P2POp.Kind.SEND ? "ncclSend" : "ncclRecv", rc);
            }
        });
        return new StreamWork(op, peerText);
    }

    /**
     * Posts a send of device memory.
     *
     * @param buffer the data
     * @param dst the destination rank
     * @return the pending work
     */
    public Work isend(NcclBuffer buffer, int dst) {
        return batchIsendIrecv(DeviceP2POp.send(buffer, dst));
    }

    /**
     * Posts a receive into device memory.
     *
     * @param buffer where the data goes (the sender's count and type)
     * @param src the source rank
     * @return the pending work
     */
    public Work irecv(NcclBuffer buffer, int src) {
        return batchIsendIrecv(DeviceP2POp.recv(buffer, src));
    }

    /**
     * Sends device memory and waits until the transfer completed.
     *
     * @param buffer the data
     * @param dst the destination rank
     */
    public void send(NcclBuffer buffer, int dst) {
        isend(buffer, dst).await();
    }

    /**
     * Receives into device memory and waits for the data.
     *
     * @param buffer where the data goes
     * @param src the source rank
     */
    public void recv(NcclBuffer buffer, int src) {
        irecv(buffer, src).await();
    }

    /**
     * All-reduces device memory in place ({@code ncclAllReduce} with send = receive buffer).
     *
     * @param buffer the data, the same count and type on every rank
     * @param reduceOp the reduction
     */
    public void allReduce(NcclBuffer buffer, ReduceOp reduceOp) {
        String op = "allReduce(" + reduceOp + ")";
        enter(op);
        long deadline = watchdog.deadline();
        streams.orderAfterData();
        Pointer c = comm.handle(op);
        launchGroup(op, "the other ranks", deadline, () -> comm.checkCall("ncclAllReduce", nccl.ncclAllReduce(ptr(buffer),
                ptr(buffer), buffer.count(), NcclLibrary.dataType(buffer.type()), reduceOp.ncclCode(), c, streams.handle())));
        new StreamWork(op, "the other ranks").await();
    }

    /**
     * All-gathers device memory: rank r's {@code send} lands at {@code recv[r * send.count() ..]}.
     *
     * @param send this rank's data; the same count on every rank
     * @param recv {@code size() * send.count()} elements of the same type; may contain send at rank's offset
     */
    public void allGather(NcclBuffer send, NcclBuffer recv) {
        String op = "allGather";
        enter(op);
        if (recv.count() != send.count() * world || recv.type() != send.type()) {
            throw new IllegalArgumentException(op + ": recv must hold " + world + " x " + send.count() + " "
                    + send.type() + " elements, got " + recv.count() + " " + recv.type());
        }
        long deadline = watchdog.deadline();
        streams.orderAfterData();
        Pointer c = comm.handle(op);
        launchGroup(op, "the other ranks", deadline, () -> comm.checkCall("ncclAllGather", nccl.ncclAllGather(ptr(send),
                ptr(recv), send.count(), NcclLibrary.dataType(send.type()), c, streams.handle())));
        new StreamWork(op, "the other ranks").await();
    }

    /**
     * All-to-all with equal chunks (NCCL has no all-to-all: one group of sends and receives): chunk j of
     * {@code send} goes to rank j, and rank i's chunk for this rank lands in chunk i of {@code recv}.
     *
     * @param send {@code size() * c} elements
     * @param recv {@code size() * c} elements of the same type, not overlapping send
     */
    public void allToAll(NcclBuffer send, NcclBuffer recv) {
        if (send.count() != recv.count() || send.count() % world != 0 || send.type() != recv.type()) {
            throw new IllegalArgumentException("allToAll: send and recv must both hold " + world + " equal chunks of"
                    + " one type; got send " + send.count() + " " + send.type() + ", recv " + recv.count() + " "
                    + recv.type());
        }
        long c = send.count() / world;
        NcclBuffer[] sends = new NcclBuffer[world];
        NcclBuffer[] recvs = new NcclBuffer[world];
        for (int j = 0; j < world; j++) {
            sends[j] = send.slice(j * c, c);
            recvs[j] = recv.slice(j * c, c);
        }
        allToAll(sends, recvs);
    }

    /**
     * All-to-all with chunks of any size: {@code sends[j]} goes to rank j, {@code recvs[i]} receives rank i's chunk
     * for this rank (its count must match what rank i sends). The own chunk is exchanged with itself through NCCL.
     *
     * @param sends one buffer per rank
     * @param recvs one buffer per rank
     */
    public void allToAll(NcclBuffer[] sends, NcclBuffer[] recvs) {
        String op = "allToAll";
        enter(op);
        if (sends.length != world || recvs.length != world) {
            throw new IllegalArgumentException(op + " needs one send and one recv buffer per rank (" + world + "), got "
                    + sends.length + " and " + recvs.length);
        }
        long deadline = watchdog.deadline();
        streams.orderAfterData();
        Pointer c = comm.handle(op);
        launchGroup(op, "the other ranks", deadline, () -> {
            for (int j = 0; j < world; j++) {
                if (sends[j].count() > 0) {
                    comm.checkCall("ncclSend", nccl.ncclSend(ptr(sends[j]), sends[j].count(), NcclLibrary.dataType(sends[j].type()), j,
                            c, streams.handle()));
                }
                if (recvs[j].count() > 0) {
                    comm.checkCall("ncclRecv", nccl.ncclRecv(ptr(recvs[j]), recvs[j].count(), NcclLibrary.dataType(recvs[j].type()), j,
                            c, streams.handle()));
                }
            }
        });
        new StreamWork(op, "the other ranks").await();
    }

    /** {@inheritDoc} */
    @Override
    public long[] allGatherLongs(long... values) {
        int n = values.length;
        long bytes = 8L * n * world;
        if (n == 0) {
            return new long[0];
        }
        enter("allGatherLongs");
        DeviceBuffer buffer = streams.scratch(bytes);
        buffer.copyFromHost(jcuda.Pointer.to(values), 8L * n * rank, 8L * n);
        streams.orderAfter(CudaStream.legacy(device)); // the copy ran on the legacy stream, whatever the data stream is
        NcclBuffer all = new NcclBuffer(buffer.getAddress(), (long) n * world, DeviceDataType.INT64);
        allGather(all.slice((long) n * rank, n), all);
        long[] out = new long[n * world];
        buffer.copyToHost(jcuda.Pointer.to(out), 0, bytes);
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        enter("barrier");
        allReduce(new NcclBuffer(streams.scratch(8).getAddress(), 1, DeviceDataType.INT32), ReduceOp.SUM);
    }

    // ---------------------------------------------------------------- NDArray collectives

    /** {@inheritDoc} */
    @Override
    public Work batchIsendIrecv(List<P2POp> ops) {
        return ndArrays.batchIsendIrecv(ops);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allGather(NDArray tensor) {
        return ndArrays.allGather(tensor);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allToAll(NDArray[] chunks) {
        return ndArrays.allToAll(chunks);
    }

    /** {@inheritDoc} */
    @Override
    public void allReduce(NDArray tensor, ReduceOp op) {
        ndArrays.allReduce(tensor, op);
    }

    // ---------------------------------------------------------------- lifecycle

    /** {@inheritDoc} */
    @Override
    public void abort(Throwable cause) {
        makeCurrent();
        comm.abort("aborted by the caller: " + (cause == null ? "no cause given" : cause));
    }

    /**
     * Returns whether the communicator was aborted (after a timeout, a peer failure or {@link #abort}).
     *
     * @return true once aborted
     */
    public boolean isAborted() {
        return comm.isAborted();
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        makeCurrent();
        if (comm.startFinalize()) {
            try {
                watchdog.awaitCommunicator("ncclCommFinalize", "the other ranks", watchdog.deadline());
                comm.destroy();
            } catch (ProcessGroupException e) {
                logger.warn("NCCL rank {}: finalize failed, communicator aborted: {}", rank, e.getMessage());
            }
        }
        streams.close();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "NcclProcessGroup{rank=" + rank + ", size=" + world + ", device=" + device + ", timeout=" + timeout
                + (comm.isAborted() ? ", aborted" : "") + "}";
    }

    private void releaseAfterFailure() {
        closed = true;
        makeCurrent();
        comm.discard();
        streams.close();
    }

    private void enter(String op) {
        if (closed) {
            throw new IllegalStateException(op + " on rank " + rank + ": this NCCL process group is closed");
        }
        comm.checkNotAborted(op);
        makeCurrent();
    }

    private void makeCurrent() {
        CudaRuntime.bind(device);
    }

    private void checkPeer(String op, int peer) {
        if (peer < 0 || peer >= world || peer == rank) {
            throw new IllegalArgumentException(op + " peer " + peer + " is not valid on rank " + rank
                    + "; allowed: ranks 0.." + (world - 1) + " other than " + rank);
        }
    }

    /** NCCL calls made between ncclGroupStart and ncclGroupEnd. */
    private interface GroupBody {
        void run();
    }

    // Runs NCCL calls in a group and waits (bounded) until a non-blocking communicator has enqueued them.
    private void launchGroup(String op, String peers, long deadline, GroupBody body) {
        comm.checkCall("ncclGroupStart", nccl.ncclGroupStart());
        int rc;
        try {
            body.run();
        } finally {
            rc = nccl.ncclGroupEnd();
        }
        if (rc == NcclLibrary.IN_PROGRESS) {
            watchdog.awaitCommunicator(op, peers, deadline);
        } else if (rc != NcclLibrary.SUCCESS) {
            watchdog.fail(op, peers, "ncclGroupEnd returned " + comm.error(rc));
        }
    }

    private static Pointer ptr(NcclBuffer b) {
        return b.pointer() == 0 ? null : new Pointer(b.pointer());
    }

    /** Completion of the work enqueued so far on the communication stream, marked by an event. */
    private final class StreamWork implements Work {
        private final String op;
        private final String peers;
        private CudaEvent event;

        StreamWork(String op, String peers) {
            this.op = op;
            this.peers = peers;
            this.event = streams.markCompletion();
        }

        @Override
        public void await() {
            if (event == null) {
                return;
            }
            enter(op);
            try {
                watchdog.awaitEvent(event, op, peers);
            } finally {
                release();
            }
        }

        @Override
        public boolean isCompleted() {
            if (event == null) {
                return true;
            }
            if (event.isComplete()) {
                release();
                return true;
            }
            return false;
        }

        private void release() {
            if (event != null) {
                event.close();
                event = null;
            }
        }
    }
}
