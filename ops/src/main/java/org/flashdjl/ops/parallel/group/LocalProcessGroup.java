package org.flashdjl.ops.parallel.group;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;

import org.flashdjl.ops.Checks;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * A {@link ProcessGroup} whose ranks are threads of one JVM exchanging NDArrays: context parallelism on CPU and the
 * algorithms' tests in CI.
 *
 * <p>{@link #create(int)} returns one group per rank; run each rank on its own thread with its own
 * {@link NDManager}. A send hands a detached copy of the tensor through a per-pair FIFO queue and completes at
 * once; the receiver attaches the copy to its own manager (or copies it into the receive buffer and closes it),
 * so an array never has two owners. Collectives are pairwise exchanges on a second set of queues, tagged with the
 * op's name and sequence number: ranks that call collectives in different orders get a clear error instead of
 * wrong data. Reductions add in rank order, so every rank gets bit-identical results.
 *
 * <p>Every wait polls with the group's timeout and fails fast when a peer {@link #abort aborted} or
 * {@link #close closed} the group.
 */
public final class LocalProcessGroup implements ProcessGroup {

    /** The default bound on every wait. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    private static final Logger logger = LoggerFactory.getLogger(LocalProcessGroup.class);
    private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    private static final NDIndex ALL = new NDIndex("...");

    private final Shared shared;
    private final int rank;
    private long collectiveSeq;

    private LocalProcessGroup(Shared shared, int rank) {
        this.shared = shared;
        this.rank = rank;
    }

    /**
     * Creates the groups of a world with the default timeout.
     *
     * @param world the number of ranks, {@code >= 1}
     * @return one group per rank, index = rank
     */
    public static List<LocalProcessGroup> create(int world) {
        return create(world, DEFAULT_TIMEOUT);
    }

    /**
     * Creates the groups of a world.
     *
     * @param world the number of ranks, {@code >= 1}
     * @param timeout the bound on every wait, {@code > 0}
     * @return one group per rank, index = rank
     */
    public static List<LocalProcessGroup> create(int world, Duration timeout) {
        Checks.checkAtLeast("world", world, 1, "number of ranks");
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isZero() || timeout.isNegative()) {
            throw new IllegalArgumentException("timeout must be > 0, got " + timeout);
        }
        Shared shared = new Shared(world, timeout);
        List<LocalProcessGroup> groups = new ArrayList<>(world);
        for (int r = 0; r < world; r++) {
            groups.add(new LocalProcessGroup(shared, r));
        }
        return Collections.unmodifiableList(groups);
    }

    /** {@inheritDoc} */
    @Override
    public int rank() {
        return rank;
    }

    /** {@inheritDoc} */
    @Override
    public int size() {
        return shared.world;
    }

    /** {@inheritDoc} */
    @Override
    public Duration timeout() {
        return shared.timeout;
    }

    /** {@inheritDoc} */
    @Override
    public String backendName() {
        return "local";
    }

    /** {@inheritDoc} */
    @Override
    public Work batchIsendIrecv(List<P2POp> ops) {
        checkOpen("batchIsendIrecv");
        List<P2POp> recvs = new ArrayList<>();
        for (P2POp op : ops) {
            checkPeer(op.kind() == P2POp.Kind.SEND ? "send" : "recv", op.peer());
        }
        for (P2POp op : ops) {
            if (op.kind() == P2POp.Kind.SEND) {
                post(shared.p2p[rank][op.peer()], "send", op.peer(), new Message("p2p", -1, transit(op.tensor()), null));
            } else {
                recvs.add(op);
            }
        }
        return recvs.isEmpty() ? Work.completed() : new RecvWork(recvs);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allGather(NDArray tensor) {
        String op = "allGather";
        long seq = beginCollective(op);
        NDArray[] out = new NDArray[size()];
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                post(shared.coll[rank][p], op, p, new Message(op, seq, transit(tensor), null));
            }
        }
        out[rank] = tensor.duplicate();
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                out[p] = adopt(take(shared.coll[p][rank], op, seq, p).array, tensor.getManager());
            }
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] allToAll(NDArray[] chunks) {
        String op = "allToAll";
        if (chunks.length != size()) {
            throw new IllegalArgumentException("allToAll needs one chunk per rank (" + size() + "), got "
                    + chunks.length);
        }
        long seq = beginCollective(op);
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                post(shared.coll[rank][p], op, p, new Message(op, seq, transit(chunks[p]), null));
            }
        }
        NDArray[] out = new NDArray[size()];
        out[rank] = chunks[rank].duplicate();
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                out[p] = adopt(take(shared.coll[p][rank], op, seq, p).array, chunks[0].getManager());
            }
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduce(NDArray tensor, ReduceOp reduceOp) {
        String op = "allReduce(" + reduceOp + ")";
        long seq = beginCollective(op);
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                post(shared.coll[rank][p], op, p, new Message(op, seq, transit(tensor), null));
            }
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray acc = null;
            for (int p = 0; p < size(); p++) { // rank order: bit-identical results on every rank
                NDArray x = p == rank ? tensor : adopt(take(shared.coll[p][rank], op, seq, p).array,
                        tensor.getManager());
                if (!x.getShape().equals(tensor.getShape())) {
                    throw new ProcessGroupException(op + " on rank " + rank + ": rank " + p + " contributed shape "
                            + x.getShape() + " but this rank " + tensor.getShape() + "; shapes must match");
                }
                acc = acc == null ? x : (reduceOp == ReduceOp.SUM ? acc.add(x) : acc.maximum(x));
            }
            if (size() > 1) {
                tensor.set(ALL, acc);
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public long[] allGatherLongs(long... values) {
        String op = "allGatherLongs";
        long seq = beginCollective(op);
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                post(shared.coll[rank][p], op, p, new Message(op, seq, null, values.clone()));
            }
        }
        long[] out = new long[size() * values.length];
        for (int p = 0; p < size(); p++) {
            long[] got = p == rank ? values : take(shared.coll[p][rank], op, seq, p).longs;
            if (got.length != values.length) {
                throw new ProcessGroupException(op + " on rank " + rank + ": rank " + p + " sent " + got.length
                        + " values but this rank " + values.length + "; counts must match");
            }
            System.arraycopy(got, 0, out, p * values.length, values.length);
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        String op = "barrier";
        long seq = beginCollective(op);
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                post(shared.coll[rank][p], op, p, new Message(op, seq, null, new long[0]));
            }
        }
        for (int p = 0; p < size(); p++) {
            if (p != rank) {
                take(shared.coll[p][rank], op, seq, p);
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public void abort(Throwable cause) {
        String reason = "rank " + rank + " aborted the group: " + (cause == null ? "no cause given" : cause);
        synchronized (shared) {
            if (shared.abortReason == null) {
                shared.abortReason = reason;
                logger.warn("local process group: {}", reason);
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        if (shared.closed.getAndSet(rank, 1) == 1) {
            return;
        }
        for (int p = 0; p < size(); p++) {
            drain(shared.p2p[p][rank]);
            drain(shared.coll[p][rank]);
        }
    }

    /**
     * Returns whether {@link #close()} was called on this rank's group.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return shared.closed.get(rank) == 1;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LocalProcessGroup{rank=" + rank + ", size=" + size() + ", timeout=" + shared.timeout + "}";
    }

    private long beginCollective(String op) {
        checkOpen(op);
        return collectiveSeq++;
    }

    private void checkOpen(String op) {
        if (isClosed()) {
            throw new IllegalStateException(op + " on rank " + rank + ": this process group is closed");
        }
        String reason = shared.abortReason;
        if (reason != null) {
            throw new ProcessGroupException(op + " on rank " + rank + " failed: " + reason);
        }
    }

    private void checkPeer(String op, int peer) {
        if (peer < 0 || peer >= size() || peer == rank) {
            throw new IllegalArgumentException(op + " peer " + peer + " is not valid on rank " + rank
                    + "; allowed: ranks 0.." + (size() - 1) + " other than " + rank);
        }
    }

    private void post(BlockingQueue<Message> queue, String op, int peer, Message message) {
        if (shared.closed.get(peer) == 1) {
            message.release();
            throw new ProcessGroupException(op + " from rank " + rank + " to rank " + peer + ": rank " + peer
                    + " has closed the group");
        }
        queue.add(message);
    }

    private Message take(BlockingQueue<Message> queue, String tag, long seq, int peer) {
        String op = "p2p".equals(tag) ? "recv" : tag;
        long timeoutNanos = shared.timeout.toNanos();
        long deadline = System.nanoTime() + timeoutNanos;
        try {
            while (true) {
                String reason = shared.abortReason;
                if (reason != null) {
                    throw new ProcessGroupException(op + " on rank " + rank + " waiting for rank " + peer
                            + " failed: " + reason);
                }
                boolean peerClosed = shared.closed.get(peer) == 1;
                long left = deadline - System.nanoTime();
                Message m = queue.poll(peerClosed ? 0 : Math.max(0, Math.min(left, POLL_NANOS)),
                        TimeUnit.NANOSECONDS);
                if (m != null) {
                    if (!m.op.equals(tag) || m.seq != seq) {
                        String got = m.op + (m.seq >= 0 ? " #" + m.seq : "");
                        m.release();
                        throw new ProcessGroupException(op + (seq >= 0 ? " #" + seq : "") + " on rank " + rank
                                + " received " + got + " from rank " + peer + ": every rank must call the same"
                                + " collectives in the same order");
                    }
                    return m;
                }
                if (peerClosed) {
                    throw new ProcessGroupException(op + " on rank " + rank + ": rank " + peer
                            + " closed the group without sending");
                }
                if (left <= 0) {
                    throw new ProcessGroupTimeoutException(op + " on rank " + rank + " timed out after "
                            + format(shared.timeout) + " waiting for rank " + peer + " (local process group of "
                            + size() + " ranks)", shared.timeout);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ProcessGroupException(op + " on rank " + rank + " interrupted while waiting for rank " + peer,
                    e);
        }
    }

    private static String format(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    // A copy that belongs to no manager and no scope: it crosses threads and the receiver adopts it.
    private static NDArray transit(NDArray tensor) {
        NDArray copy = tensor.duplicate();
        NDScope.unregister(copy);
        copy.detach();
        return copy;
    }

    private static NDArray adopt(NDArray copy, NDManager manager) {
        copy.attach(manager);
        NDScope.register(copy);
        return copy;
    }

    private static void drain(BlockingQueue<Message> queue) {
        Message m;
        while ((m = queue.poll()) != null) {
            m.release();
        }
    }

    /** Receives of one batch, completed in posting order. */
    private final class RecvWork implements Work {
        private final List<P2POp> recvs;
        private int done;

        RecvWork(List<P2POp> recvs) {
            this.recvs = recvs;
        }

        @Override
        public void await() {
            while (done < recvs.size()) {
                P2POp op = recvs.get(done);
                deliver(op, take(shared.p2p[op.peer()][rank], "p2p", -1, op.peer()));
            }
        }

        @Override
        public boolean isCompleted() {
            while (done < recvs.size()) {
                P2POp op = recvs.get(done);
                Message m = shared.p2p[op.peer()][rank].poll();
                if (m == null) {
                    return false;
                }
                deliver(op, m);
            }
            return true;
        }

        private void deliver(P2POp op, Message m) {
            done++;
            try (NDArray data = m.array) {
                NDArray into = op.tensor();
                if (!data.getShape().equals(into.getShape()) || data.getDataType() != into.getDataType()) {
                    throw new IllegalArgumentException("recv on rank " + rank + " from rank " + op.peer()
                            + ": the buffer is " + into.getShape() + " " + into.getDataType() + " but rank "
                            + op.peer() + " sent " + data.getShape() + " " + data.getDataType());
                }
                into.set(ALL, data);
            }
        }
    }

    /** A tensor or host values in transit, tagged with the op that sent it. */
    private static final class Message {
        final String op;
        final long seq;
        final NDArray array;
        final long[] longs;

        Message(String op, long seq, NDArray array, long[] longs) {
            this.op = op;
            this.seq = seq;
            this.array = array;
            this.longs = longs;
        }

        void release() {
            if (array != null) {
                array.close();
            }
        }
    }

    /** The queues and flags every rank of one world shares. */
    private static final class Shared {
        final int world;
        final Duration timeout;
        final BlockingQueue<Message>[][] p2p; // [src][dst]
        final BlockingQueue<Message>[][] coll; // [src][dst]
        final AtomicIntegerArray closed;
        volatile String abortReason;

        @SuppressWarnings("unchecked")
        Shared(int world, Duration timeout) {
            this.world = world;
            this.timeout = timeout;
            this.p2p = new BlockingQueue[world][world];
            this.coll = new BlockingQueue[world][world];
            for (BlockingQueue<Message>[] row : p2p) {
                Arrays.setAll(row, i -> new LinkedBlockingQueue<>());
            }
            for (BlockingQueue<Message>[] row : coll) {
                Arrays.setAll(row, i -> new LinkedBlockingQueue<>());
            }
            this.closed = new AtomicIntegerArray(world);
        }
    }
}
