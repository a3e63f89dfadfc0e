package org.flashdjl.ops.parallel.nccl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.ProcessGroupTimeoutException;

/** The TCP rendezvous that hands rank 0's NCCL id to every rank (pure Java: runs in CI). */
class NcclRendezvousTest {

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static byte[] id() {
        byte[] id = new byte[NcclProcessGroup.UNIQUE_ID_BYTES];
        for (int i = 0; i < id.length; i++) {
            id[i] = (byte) (i * 7 + 3);
        }
        return id;
    }

    @Test
    void everyRankGetsRankZerosId() throws Exception {
        int port = freePort();
        int world = 4;
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<byte[]>> got = new ArrayList<>();
            for (int r = world - 1; r >= 0; r--) { // the others start before rank 0 listens: they retry
                int rank = r;
                got.add(pool.submit(() -> NcclRendezvous.exchange(rank, world, "127.0.0.1", port,
                        Duration.ofSeconds(20), NcclRendezvousTest::id)));
                Thread.sleep(50);
            }
            for (Future<byte[]> f : got) {
                assertArrayEquals(id(), f.get(30, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        // a world of one needs no socket
        assertArrayEquals(id(), NcclRendezvous.exchange(0, 1, "127.0.0.1", port, Duration.ofSeconds(1),
                NcclRendezvousTest::id));
    }

    @Test
    void missingRanksAreNamedWhenRankZeroTimesOut() throws Exception {
        int port = freePort();
        long t0 = System.nanoTime();
        ProcessGroupTimeoutException e = assertThrows(ProcessGroupTimeoutException.class,
                () -> NcclRendezvous.exchange(0, 3, "127.0.0.1", port, Duration.ofMillis(700),
                        NcclRendezvousTest::id));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 5000, "took " + ms + " ms");
        assertEquals("rendezvous on rank 0 timed out after 700 ms: ranks [1, 2] did not connect to 127.0.0.1:" + port,
                e.getMessage());
    }

    @Test
    void absentRankZeroTimesOutWithTheAddress() throws Exception {
        int port = freePort();
        ProcessGroupTimeoutException e = assertThrows(ProcessGroupTimeoutException.class,
                () -> NcclRendezvous.exchange(1, 2, "127.0.0.1", port, Duration.ofMillis(800),
                        NcclRendezvousTest::id));
        assertTrue(e.getMessage().startsWith("rendezvous on rank 1 timed out after 800 ms: rank 0 did not answer at"
                + " 127.0.0.1:" + port + " (last error: "), e.getMessage());
    }

    @Test
    void mismatchedWorldSizesFailOnBothSides() throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<byte[]> zero = pool.submit(() -> NcclRendezvous.exchange(0, 2, "127.0.0.1", port,
                    Duration.ofSeconds(10), NcclRendezvousTest::id));
            Future<byte[]> one = pool.submit(() -> NcclRendezvous.exchange(1, 3, "127.0.0.1", port,
                    Duration.ofSeconds(10), NcclRendezvousTest::id));
            ExecutionException e0 = assertThrows(ExecutionException.class, () -> zero.get(20, TimeUnit.SECONDS));
            ExecutionException e1 = assertThrows(ExecutionException.class, () -> one.get(20, TimeUnit.SECONDS));
            assertEquals("rendezvous on rank 0 failed: rank 1 has WORLD_SIZE 3 but rank 0 has 2",
                    e0.getCause().getMessage());
            assertEquals("rendezvous on rank 1 refused by rank 0: rank 1 has WORLD_SIZE 3 but rank 0 has 2",
                    e1.getCause().getMessage());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void busyPortAndBadArgumentsAreExplained() throws Exception {
        try (ServerSocket busy = new ServerSocket(0)) {
            ProcessGroupException e = assertThrows(ProcessGroupException.class, () -> NcclRendezvous.exchange(0, 2,
                    "127.0.0.1", busy.getLocalPort(), Duration.ofSeconds(2), NcclRendezvousTest::id));
            assertTrue(e.getMessage().startsWith("rendezvous on rank 0: MASTER_PORT " + busy.getLocalPort()
                    + " is in use"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> NcclRendezvous.exchange(2, 2, "h", 1, Duration.ofSeconds(1),
                NcclRendezvousTest::id));
        assertThrows(IllegalArgumentException.class, () -> NcclRendezvous.exchange(0, 2, "h", 70000,
                Duration.ofSeconds(1), NcclRendezvousTest::id));
    }
}
