package org.flashdjl.ops.parallel.nccl;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.ProcessGroupTimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * The rendezvous that hands rank 0's NCCL unique id to every rank, over a small TCP exchange at
 * {@code MASTER_ADDR:MASTER_PORT} (the torchrun convention).
 *
 * <p>Rank 0 listens on the port and answers each connecting rank with the 128-byte id; the other ranks connect
 * (retrying while rank 0 is not listening yet) and read it. Both sides check a magic number, the world size and the
 * rank, so two jobs sharing a port or a wrong {@code WORLD_SIZE} fail with a clear error. Every connect, accept and
 * read is bounded by the timeout.
 */
public final class NcclRendezvous {

    private static final Logger logger = LoggerFactory.getLogger(NcclRendezvous.class);
    private static final int MAGIC = 0x46444A4C; // "FDJL"
    private static final int VERSION = 1;
    private static final int OK = 0;
    private static final int REFUSED = 1;

    private NcclRendezvous() {}

    /**
     * Exchanges the id: rank 0 creates it with {@code idFactory} and serves it; other ranks fetch it.
     *
     * @param rank this process's rank
     * @param world the number of ranks
     * @param masterAddr rank 0's host name or address
     * @param masterPort rank 0's port (1..65535)
     * @param timeout the bound on the whole exchange
     * @param idFactory creates the id on rank 0 (e.g. {@link NcclProcessGroup#newUniqueId()})
     * @return the id, the same on every rank
     * @throws ProcessGroupTimeoutException when ranks did not meet in time, naming the missing ranks or rank 0's
     *     address
     * @throws ProcessGroupException for a busy port, a mismatched world size, or a duplicate rank
     */
    public static byte[] exchange(int rank, int world, String masterAddr, int masterPort, Duration timeout,
            Supplier<byte[]> idFactory) {
        Checks.checkAtLeast("world", world, 1, "number of ranks");
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " is outside the world of " + world
                    + " ranks; allowed: 0.." + (world - 1));
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException("MASTER_PORT must be 1..65535, got " + masterPort);
        }
        Objects.requireNonNull(masterAddr, "masterAddr");
        long deadline = System.nanoTime() + timeout.toNanos();
        if (rank == 0) {
            byte[] id = idFactory.get();
            if (id.length != NcclProcessGroup.UNIQUE_ID_BYTES) {
                throw new IllegalArgumentException("the unique id must have " + NcclProcessGroup.UNIQUE_ID_BYTES
                        + " bytes, got " + id.length);
            }
            if (world > 1) {
                serve(id, world, masterAddr, masterPort, timeout, deadline);
            }
            return id.clone();
        }
        return fetch(rank, world, masterAddr, masterPort, timeout, deadline);
    }

    private static void serve(byte[] id, int world, String addr, int port, Duration timeout, long deadline) {
        TreeSet<Integer> missing = new TreeSet<>();
        for (int r = 1; r < world; r++) {
            missing.add(r);
        }
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            try {
                server.bind(new InetSocketAddress(port));
            } catch (BindException e) {
                throw new ProcessGroupException("rendezvous on rank 0: MASTER_PORT " + port + " is in use ("
                        + e.getMessage() + "); pick a free port for MASTER_PORT", e);
            }
            logger.info("rendezvous: rank 0 serves the NCCL id on port {} for {} ranks", port, world);
            List<String> errors = new ArrayList<>();
            while (!missing.isEmpty()) {
                int left = remainingMillis(deadline);
                if (left <= 0) {
                    throw timeout(0, "ranks " + missing + " did not connect to " + addr + ":" + port, timeout);
                }
                server.setSoTimeout(left);
                try (Socket s = server.accept()) {
                    s.setSoTimeout(Math.max(1, remainingMillis(deadline)));
                    DataInputStream in = new DataInputStream(s.getInputStream());
                    DataOutputStream out = new DataOutputStream(s.getOutputStream());
                    int magic = in.readInt();
                    int version = in.readInt();
                    int theirWorld = in.readInt();
                    int theirRank = in.readInt();
                    String problem = null;
                    if (magic != MAGIC || version != VERSION) {
                        problem = "a connection from " + s.getRemoteSocketAddress() + " is not a FlashDJL rendezvous"
                                + " (another job on MASTER_PORT " + port + "?)";
                    } else if (theirWorld != world) {
                        problem = "rank " + theirRank + " has WORLD_SIZE " + theirWorld + " but rank 0 has " + world;
                    } else if (!missing.contains(theirRank)) {
                        problem = "rank " + theirRank + " connected twice or is outside 1.." + (world - 1);
                    }
                    out.writeInt(MAGIC);
                    if (problem == null) {
                        out.writeInt(OK);
                        out.write(id);
                        missing.remove(theirRank);
                    } else {
                        out.writeInt(REFUSED);
                        out.writeUTF(problem);
                        errors.add(problem);
                    }
                    out.flush();
                    if (!errors.isEmpty()) {
                        throw new ProcessGroupException("rendezvous on rank 0 failed: " + errors.get(0));
                    }
                } catch (SocketTimeoutException e) {
                    // loop: the deadline check names the missing ranks
                }
            }
        } catch (IOException e) {
            throw new ProcessGroupException("rendezvous on rank 0 at port " + port + " failed: " + e, e);
        }
    }

    private static byte[] fetch(int rank, int world, String addr, int port, Duration timeout, long deadline) {
        String lastError = "no attempt";
        while (true) {
            int left = remainingMillis(deadline);
            if (left <= 0) {
                throw timeout(rank, "rank 0 did not answer at " + addr + ":" + port + " (last error: " + lastError
                        + ")", timeout);
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(addr, port), Math.min(left, 2000));
                s.setSoTimeout(Math.max(1, remainingMillis(deadline)));
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeInt(MAGIC);
                out.writeInt(VERSION);
                out.writeInt(world);
                out.writeInt(rank);
                out.flush();
                DataInputStream in = new DataInputStream(s.getInputStream());
                if (in.readInt() != MAGIC) {
                    throw new ProcessGroupException("rendezvous on rank " + rank + ": " + addr + ":" + port
                            + " is not a FlashDJL rank 0 (another service on MASTER_PORT?)");
                }
                if (in.readInt() != OK) {
                    throw new ProcessGroupException("rendezvous on rank " + rank + " refused by rank 0: "
                            + in.readUTF());
                }
                byte[] id = new byte[NcclProcessGroup.UNIQUE_ID_BYTES];
                in.readFully(id);
                return id;
            } catch (SocketTimeoutException e) {
                lastError = "timed out";
            } catch (IOException e) {
                lastError = e.getMessage();
                try {
                    Thread.sleep(Math.min(200, Math.max(1, remainingMillis(deadline))));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new ProcessGroupException("rendezvous on rank " + rank + " interrupted", ie);
                }
            }
        }
    }

    private static ProcessGroupTimeoutException timeout(int rank, String what, Duration timeout) {
        return new ProcessGroupTimeoutException("rendezvous on rank " + rank + " timed out after "
                + (timeout.toMillis() % 1000 == 0 ? timeout.toSeconds() + " s" : timeout.toMillis() + " ms") + ": "
                + what, timeout);
    }

    private static int remainingMillis(long deadline) {
        long ms = (deadline - System.nanoTime()) / 1_000_000;
        return (int) Math.max(0, Math.min(Integer.MAX_VALUE, ms));
    }
}
