package org.flashdjl.ops.parallel;

import org.flashdjl.ops.cuda.DeviceDataType;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.cuda.CudaEvent;
import org.flashdjl.ops.cuda.CudaException;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.CudaStream;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;

/**
 * A {@link ProcessGroup} over NCCL ({@code libnccl.so.2}, called through JNA): one rank per GPU, either one process
 * per GPU ({@link #create}, usually through {@link Distributed#init()}) or one process driving several GPUs from one
 * thread each ({@link #createAll}).
 *
 * <p><b>Buffers.</b> NCCL moves device memory: the primary API takes {@link NcclBuffer}s (raw CUDA addresses,
 * element count, type). The {@link ProcessGroup} NDArray methods convert NDArrays with the adapter set by
 * {@link #setNDArrayAdapter}, by default the CUDA package's device view of PyTorch-engine NDArrays
 * ({@link DeviceTensor#fromNDArray}: dense, contiguous, float16/float32/int32, on this group's GPU).
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
    private static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(50);
    private static final long PARK_NANOS = TimeUnit.MICROSECONDS.toNanos(20);

    private static volatile Function<NDArray, NcclBuffer> ndArrayAdapter = NcclProcessGroup::deviceTensorView;

    private final NcclLibrary nccl;
    private final int rank;
    private final int world;
    private final int device;
    private final Duration timeout;
    private final CudaStream stream; // communication stream, non-blocking
    private final Pointer streamHandle; // the same as NCCL's cudaStream_t
    private final CudaEvent dataEvent; // orders the communication stream after the data stream
    private Pointer comm;
    private CudaStream dataStream; // where the buffers are written: the legacy default stream unless set
    private DeviceBuffer scratch; // device scratch for barrier and allGatherLongs, null until needed
    private volatile String abortReason;
    private boolean closed;

    private NcclProcessGroup(int rank, int world, int device, Duration timeout) {
        this.nccl = NativeLibraries.nccl();
        this.rank = rank;
        this.world = world;
        this.device = device;
        this.timeout = timeout;
        this.dataStream = CudaStream.legacy(device);
        this.stream = CudaStream.create(device, true);
        try {
            this.dataEvent = CudaEvent.create(device);
        } catch (RuntimeException e) {
            stream.close();
            throw e;
        }
        this.streamHandle = new Pointer(stream.getHandle());
    }

    /**
     * Returns why NCCL cannot run in this process (no CUDA driver, no device, no {@code libnccl.so.2}), or null.
     *
     * @return the reason or null
     */
    public static String unavailableReason() {
        return NativeLibraries.unavailableReason();
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
        IntByReference v = new IntByReference();
        checkNccl(NativeLibraries.nccl(), "ncclGetVersion", NativeLibraries.nccl().ncclGetVersion(v));
        return v.getValue();
    }

    /**
     * Creates a new NCCL unique id ({@code ncclGetUniqueId}); rank 0 makes it and every rank passes it to
     * {@link #create}.
     *
     * @return the 128 id bytes
     */
    public static byte[] newUniqueId() {
        NcclLibrary nccl = NativeLibraries.nccl();
        NcclLibrary.UniqueId id = new NcclLibrary.UniqueId();
        checkNccl(nccl, "ncclGetUniqueId", nccl.ncclGetUniqueId(id));
        id.read();
        return id.internal.clone();
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
            g.initComm(uniqueId);
            g.awaitComm("ncclCommInitRankConfig", "the other ranks", g.deadline());
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
        NcclLibrary nccl = NativeLibraries.nccl();
        try {
            for (int r = 0; r < devices.length; r++) {
                checkArgs(r, devices.length, devices[r], timeout);
                groups.add(new NcclProcessGroup(r, devices.length, devices[r], timeout));
            }
            checkNccl(nccl, "ncclGroupStart", nccl.ncclGroupStart());
            try {
                for (NcclProcessGroup g : groups) {
                    g.initComm(id);
                }
            } finally {
                int rc = nccl.ncclGroupEnd();
                if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
                    checkNccl(nccl, "ncclGroupEnd (communicator init)", rc);
                }
            }
            for (NcclProcessGroup g : groups) {
                g.makeCurrent();
                g.awaitComm("ncclCommInitRankConfig", "the other ranks", g.deadline());
            }
            return Collections.unmodifiableList(groups);
        } catch (RuntimeException e) {
            for (NcclProcessGroup g : groups) {
                g.releaseAfterFailure();
            }
            throw e;
        }
    }

    /**
     * Sets how the NDArray methods find the device memory of an NDArray (dense, contiguous, on this group's GPU).
     * The default is {@link DeviceTensor#fromNDArray} (PyTorch-engine NDArrays).
     *
     * @param adapter the conversion, or null to restore the default
     */
    public static void setNDArrayAdapter(Function<NDArray, NcclBuffer> adapter) {
        ndArrayAdapter = adapter == null ? NcclProcessGroup::deviceTensorView : adapter;
    }

    /**
     * The default adapter: the NDArray's memory through {@link DeviceTensor#fromNDArray}.
     *
     * @param array a dense contiguous GPU NDArray of the PyTorch engine
     * @return its device buffer
     * @throws IllegalArgumentException for host arrays, other engines, non-contiguous arrays, bf16
     */
    static NcclBuffer deviceTensorView(NDArray array) {
        if (!array.getDevice().isGpu()) {
            throw new IllegalArgumentException("NcclProcessGroup moves GPU memory, but the NDArray "
                    + array.getShape() + " is on " + array.getDevice() + ": move it to the group's GPU first"
                    + " (array.toDevice(Device.gpu(group.device()), false)), or use LocalProcessGroup on the CPU");
        }
        DeviceTensor t = DeviceTensor.fromNDArray(array);
        return DeviceChecks.buffer(t);
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

    private void initComm(byte[] id) {
        makeCurrent();
        NcclLibrary.UniqueId.ByValue uid = new NcclLibrary.UniqueId.ByValue();
        System.arraycopy(id, 0, uid.internal, 0, UNIQUE_ID_BYTES);
        uid.write();
        NcclLibrary.Config config = new NcclLibrary.Config();
        config.blocking = 0;
        config.write();
        PointerByReference c = new PointerByReference();
        int rc = nccl.ncclCommInitRankConfig(c, world, uid, rank, config);
        comm = c.getValue();
        if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
            throw new ProcessGroupException("ncclCommInitRankConfig on rank " + rank + " (world " + world + ", device "
                    + device + ") failed: " + ncclError(rc));
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
        return stream.isNonBlocking();
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
        this.dataStream = stream == null ? CudaStream.legacy(device) : stream;
    }

    // ---------------------------------------------------------------- device-buffer API

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
        long deadline = deadline();
        waitForDataStream();
        launchGroup(op, peerText, deadline, () -> {
            for (DeviceP2POp o : ops) {
                NcclBuffer b = o.buffer();
                if (b.count() == 0) {
                    continue; // both sides know the count: an empty message is no message
                }
                int rc = o.kind() == P2POp.Kind.SEND
                        ? nccl.ncclSend(ptr(b), b.count(), NcclLibrary.dataType(b.type()), o.peer(), comm, streamHandle)
                        : nccl.ncclRecv(ptr(b), b.count(), NcclLibrary.dataType(b.type()), o.peer(), comm, streamHandle);
                checkCall(o.kind() == P2POp.Kind.SEND ? "ncclSend" : "ncclRecv", rc);
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
        long deadline = deadline();
        waitForDataStream();
        launchGroup(op, "the other ranks", deadline, () -> checkCall("ncclAllReduce", nccl.ncclAllReduce(ptr(buffer),
                ptr(buffer), buffer.count(), NcclLibrary.dataType(buffer.type()), reduceOp.ncclCode(), comm, streamHandle)));
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
        long deadline = deadline();
        waitForDataStream();
        launchGroup(op, "the other ranks", deadline, () -> checkCall("ncclAllGather", nccl.ncclAllGather(ptr(send),
                ptr(recv), send.count(), NcclLibrary.dataType(send.type()), comm, streamHandle)));
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
        long deadline = deadline();
        waitForDataStream();
        launchGroup(op, "the other ranks", deadline, () -> {
            for (int j = 0; j < world; j++) {
                if (sends[j].count() > 0) {
                    checkCall("ncclSend", nccl.ncclSend(ptr(sends[j]), sends[j].count(), NcclLibrary.dataType(sends[j].type()), j,
                            comm, streamHandle));
                }
                if (recvs[j].count() > 0) {
                    checkCall("ncclRecv", nccl.ncclRecv(ptr(recvs[j]), recvs[j].count(), NcclLibrary.dataType(recvs[j].type()), j,
                            comm, streamHandle));
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
        DeviceBuffer buffer = scratch(bytes);
        buffer.copyFromHost(jcuda.Pointer.to(values), 8L * n * rank, 8L * n);
        waitForStream(CudaStream.legacy(device)); // the copy ran on the legacy stream, whatever the data stream is
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
        allReduce(new NcclBuffer(scratch(8).getAddress(), 1, DeviceDataType.INT32), ReduceOp.SUM);
    }

    // ---------------------------------------------------------------- NDArray API (through the adapter)

    /** {@inheritDoc} */
    @Override
    public Work batchIsendIrecv(List<P2POp> ops) {
        DeviceP2POp[] device = new DeviceP2POp[ops.size()];
        for (int i = 0; i < device.length; i++) {
            P2POp o = ops.get(i);
            device[i] = new DeviceP2POp(o.kind(), view(o.tensor()), o.peer());
        }
        return batchIsendIrecv(device);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allGather(NDArray tensor) {
        NcclBuffer send = view(tensor);
        long[] dims = tensor.getShape().getShape();
        long[] outDims = new long[dims.length + 1];
        outDims[0] = world;
        System.arraycopy(dims, 0, outDims, 1, dims.length);
        NDManager manager = tensor.getManager();
        NDArray all = manager.create(new Shape(outDims), tensor.getDataType(), tensor.getDevice());
        allGather(send, view(all));
        NDArray[] out = new NDArray[world];
        for (int r = 0; r < world; r++) {
            out[r] = all.get(r);
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allToAll(NDArray[] chunks) {
        if (chunks.length != world) {
            throw new IllegalArgumentException("allToAll needs one chunk per rank (" + world + "), got " + chunks.length);
        }
        int ndim = chunks[0].getShape().dimension();
        long[] myDims = new long[world * ndim];
        for (int j = 0; j < world; j++) {
            if (chunks[j].getShape().dimension() != ndim) {
                throw new IllegalArgumentException("allToAll chunks must have one rank; chunk 0 is "
                        + chunks[0].getShape() + ", chunk " + j + " is " + chunks[j].getShape());
            }
            System.arraycopy(chunks[j].getShape().getShape(), 0, myDims, j * ndim, ndim);
        }
        long[] dims = allGatherLongs(myDims); // [src][dst][ndim]: the receivers learn the shapes
        NDArray[] out = new NDArray[world];
        NcclBuffer[] sends = new NcclBuffer[world];
        NcclBuffer[] recvs = new NcclBuffer[world];
        for (int i = 0; i < world; i++) {
            long[] shape = Arrays.copyOfRange(dims, (i * world + rank) * ndim, (i * world + rank + 1) * ndim);
            out[i] = chunks[0].getManager().create(new Shape(shape), chunks[0].getDataType(), chunks[0].getDevice());
            sends[i] = view(chunks[i]);
            recvs[i] = view(out[i]);
        }
        allToAll(sends, recvs);
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduce(NDArray tensor, ReduceOp op) {
        allReduce(view(tensor), op);
    }

    private NcclBuffer view(NDArray array) {
        if (array.getDevice().isGpu() && array.getDevice().getDeviceId() != device) {
            throw new IllegalArgumentException("the NDArray " + array.getShape() + " is on " + array.getDevice()
                    + " but rank " + rank + " of this NCCL group uses cuda:" + device);
        }
        return ndArrayAdapter.apply(array);
    }

    // ---------------------------------------------------------------- lifecycle

    /** {@inheritDoc} */
    @Override
    public void abort(Throwable cause) {
        abortComm("aborted by the caller: " + (cause == null ? "no cause given" : cause));
    }

    /**
     * Returns whether the communicator was aborted (after a timeout, a peer failure or {@link #abort}).
     *
     * @return true once aborted
     */
    public boolean isAborted() {
        return abortReason != null;
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        makeCurrent();
        if (comm != null && abortReason == null) {
            try {
                int rc = nccl.ncclCommFinalize(comm);
                if (rc == NcclLibrary.SUCCESS || rc == NcclLibrary.IN_PROGRESS) {
                    awaitComm("ncclCommFinalize", "the other ranks", deadline());
                    nccl.ncclCommDestroy(comm);
                } else {
                    nccl.ncclCommAbort(comm);
                }
            } catch (ProcessGroupException e) {
                logger.warn("NCCL rank {}: finalize failed, communicator aborted: {}", rank, e.getMessage());
            }
        }
        comm = null;
        releaseCuda();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "NcclProcessGroup{rank=" + rank + ", size=" + world + ", device=" + device + ", timeout=" + timeout
                + (abortReason != null ? ", aborted" : "") + "}";
    }

    private void releaseAfterFailure() {
        closed = true;
        if (comm != null) {
            makeCurrent();
            if (abortReason == null) {
                nccl.ncclCommAbort(comm);
            }
            comm = null;
        }
        releaseCuda();
    }

    private void releaseCuda() {
        try {
            if (scratch != null) {
                scratch.close();
                scratch = null;
            }
            dataEvent.close();
            stream.close();
        } catch (CudaException e) {
            logger.warn("NCCL rank {}: releasing its CUDA stream, event or scratch failed: {}", rank, e.getMessage());
        }
    }

    // ---------------------------------------------------------------- waiting

    private long deadline() {
        return System.nanoTime() + timeout.toNanos();
    }

    private void enter(String op) {
        if (closed) {
            throw new IllegalStateException(op + " on rank " + rank + ": this NCCL process group is closed");
        }
        if (abortReason != null) {
            throw new ProcessGroupException(op + " on rank " + rank + " failed: the NCCL communicator was aborted ("
                    + abortReason + ")");
        }
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

    private void waitForDataStream() {
        waitForStream(dataStream);
    }

    // Makes the communication stream wait (on the device) for the work queued so far on another stream.
    private void waitForStream(CudaStream other) {
        dataEvent.record(other);
        stream.waitFor(dataEvent);
    }

    /** NCCL calls made between ncclGroupStart and ncclGroupEnd. */
    private interface GroupBody {
        void run();
    }

    // Runs NCCL calls in a group and waits (bounded) until a non-blocking communicator has enqueued them.
    private void launchGroup(String op, String peers, long deadline, GroupBody body) {
        checkCall("ncclGroupStart", nccl.ncclGroupStart());
        int rc;
        try {
            body.run();
        } finally {
            rc = nccl.ncclGroupEnd();
        }
        if (rc == NcclLibrary.IN_PROGRESS) {
            awaitComm(op, peers, deadline);
        } else if (rc != NcclLibrary.SUCCESS) {
            fail(op, peers, "ncclGroupEnd returned " + ncclError(rc));
        }
    }

    // Polls the communicator state until it leaves ncclInProgress.
    private void awaitComm(String op, String peers, long deadline) {
        IntByReference state = new IntByReference();
        long start = System.nanoTime();
        while (true) {
            if (abortReason != null) {
                throw new ProcessGroupException(op + " on rank " + rank + " failed: the NCCL communicator was aborted ("
                        + abortReason + ")");
            }
            int rc = nccl.ncclCommGetAsyncError(comm, state);
            if (rc != NcclLibrary.SUCCESS) {
                fail(op, peers, "ncclCommGetAsyncError returned " + ncclError(rc));
            }
            int s = state.getValue();
            if (s == NcclLibrary.SUCCESS) {
                return;
            }
            if (s != NcclLibrary.IN_PROGRESS) {
                fail(op, peers, "NCCL async error " + ncclError(s));
            }
            if (System.nanoTime() - deadline > 0) {
                timedOut(op, peers);
            }
            pause(start);
        }
    }

    private void pause(long start) {
        if (System.nanoTime() - start < SPIN_NANOS) {
            Thread.onSpinWait();
        } else {
            LockSupport.parkNanos(PARK_NANOS);
        }
    }

    private void timedOut(String op, String peers) {
        String message = op + " on rank " + rank + " timed out after " + format(timeout) + " waiting for " + peers
                + " (NCCL, device " + device + ", world " + world + "); the communicator was aborted";
        abortComm(message);
        throw new ProcessGroupTimeoutException(message, timeout);
    }

    private void fail(String op, String peers, String what) {
        String last = comm == null ? "" : nccl.ncclGetLastError(comm);
        String message = op + " on rank " + rank + " with " + peers + " failed: " + what
                + (last == null || last.isEmpty() ? "" : " (" + last + ")") + " (NCCL, device " + device + ", world "
                + world + "); the communicator was aborted";
        abortComm(message);
        throw new ProcessGroupException(message);
    }

    private void abortComm(String reason) {
        if (abortReason != null) {
            return;
        }
        abortReason = reason;
        logger.error("NCCL rank {}: {}", rank, reason);
        if (comm != null) {
            makeCurrent();
            int rc = nccl.ncclCommAbort(comm);
            if (rc != NcclLibrary.SUCCESS) {
                logger.warn("ncclCommAbort on rank {} returned {}", rank, ncclError(rc));
            }
            comm = null;
        }
    }

    private void checkCall(String call, int rc) {
        if (rc != NcclLibrary.SUCCESS && rc != NcclLibrary.IN_PROGRESS) {
            throw new ProcessGroupException(call + " on rank " + rank + " failed: " + ncclError(rc)
                    + (comm == null ? "" : " (" + nccl.ncclGetLastError(comm) + ")"));
        }
    }

    private String ncclError(int rc) {
        String name = rc >= 0 && rc < NcclLibrary.RESULT_NAMES.length ? NcclLibrary.RESULT_NAMES[rc] : "ncclResult";
        return name + " (" + rc + "): " + nccl.ncclGetErrorString(rc);
    }

    private static void checkNccl(NcclLibrary nccl, String call, int rc) {
        if (rc != NcclLibrary.SUCCESS) {
            throw new ProcessGroupException(call + " failed: NCCL error " + rc + ": " + nccl.ncclGetErrorString(rc));
        }
    }

    // The scratch buffer, grown to at least `bytes` (the old one is idle: every collective using it was awaited).
    private DeviceBuffer scratch(long bytes) {
        if (scratch == null || scratch.getByteSize() < bytes) {
            if (scratch != null) {
                scratch.close();
                scratch = null;
            }
            scratch = DeviceBuffer.allocate(device, Math.max(bytes, 4096));
        }
        return scratch;
    }

    private static Pointer ptr(NcclBuffer b) {
        return b.pointer() == 0 ? null : new Pointer(b.pointer());
    }

    private static String format(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    /** Completion of the work enqueued so far on the communication stream, marked by an event. */
    private final class StreamWork implements Work {
        private final String op;
        private final String peers;
        private CudaEvent event;

        StreamWork(String op, String peers) {
            this.op = op;
            this.peers = peers;
            event = CudaEvent.create(device);
            try {
                event.record(stream);
            } catch (RuntimeException e) {
                release();
                throw e;
            }
        }

        @Override
        public void await() {
            if (event == null) {
                return;
            }
            enter(op);
            long deadline = deadline();
            long start = System.nanoTime();
            IntByReference state = new IntByReference();
            while (true) {
                if (abortReason != null) {
                    release();
                    throw new ProcessGroupException(op + " on rank " + rank + " failed: the NCCL communicator was"
                            + " aborted (" + abortReason + ")");
                }
                boolean done;
                try {
                    done = event.isComplete();
                } catch (CudaException e) {
                    release();
                    fail(op, peers, "waiting for the stream: " + e.getMessage());
                    return;
                }
                if (done) {
                    release();
                    return;
                }
                if (nccl.ncclCommGetAsyncError(comm, state) == NcclLibrary.SUCCESS
                        && state.getValue() != NcclLibrary.SUCCESS && state.getValue() != NcclLibrary.IN_PROGRESS) {
                    release();
                    fail(op, peers, "NCCL async error " + ncclError(state.getValue()));
                }
                if (System.nanoTime() - deadline > 0) {
                    release();
                    timedOut(op, peers);
                }
                pause(start);
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
