package org.flashdjl.ops.parallel.group;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;
import java.util.Random;

/** The local process group's semantics: data, ordering, determinism, timeouts, aborts and clear errors. */
class LocalProcessGroupTest {

    private static float[] values(int rank, int n) {
        Random rnd = new Random(1000 + rank);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void ringExchangeDeliversInOrderWithoutDeadlock(int world) throws Exception {
        List<float[]> got = Ranks.run(world, (g, m) -> {
            int next = (g.rank() + 1) % g.size();
            int prev = (g.rank() - 1 + g.size()) % g.size();
            NDArray a = m.create(values(g.rank(), 6), new Shape(2, 3));
            NDArray b = m.create(new float[] {g.rank()});
            NDArray intoA = m.zeros(new Shape(2, 3));
            NDArray intoB = m.zeros(new Shape(1));
            Work w = g.batchIsendIrecv(List.of(P2POp.send(a, next), P2POp.send(b, next), P2POp.recv(intoA, prev),
                    P2POp.recv(intoB, prev)));
            a.set(new ai.djl.ndarray.index.NDIndex("..."), 0f); // sends were copied: changing a is safe
            w.await();
            assertEquals(prev, intoB.getFloat(0));
            return intoA.toFloatArray();
        });
        for (int r = 0; r < world; r++) {
            assertArrayEquals(values((r - 1 + world) % world, 6), got.get(r));
        }
    }

    @Test
    void blockingSendRecvAndIsCompleted() throws Exception {
        Ranks.run(2, (g, m) -> {
            if (g.rank() == 0) {
                NDArray into = m.zeros(new Shape(3));
                Work w = g.irecv(into, 1);
                g.barrier(); // rank 1 sends before the barrier
                assertTrue(w.isCompleted());
                w.await();
                assertArrayEquals(new float[] {1, 2, 3}, into.toFloatArray());
            } else {
                g.send(m.create(new float[] {1, 2, 3}), 0);
                g.barrier();
            }
            return null;
        });
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4})
    void collectivesGiveEveryRankTheSameData(int world) throws Exception {
        List<float[]> sums = Ranks.run(world, (g, m) -> {
            int r = g.rank();
            // all-gather with a different length per rank
            NDArray[] all = g.allGather(m.create(values(r, r + 1)));
            for (int p = 0; p < world; p++) {
                assertArrayEquals(values(p, p + 1), all[p].toFloatArray());
            }
            // all-to-all: chunk j of rank r is [r, j] repeated j + 1 times
            NDArray[] chunks = new NDArray[world];
            for (int j = 0; j < world; j++) {
                chunks[j] = m.full(new Shape(j + 1, 2), (float) (r * 10 + j));
            }
            NDArray[] got = g.allToAll(chunks);
            for (int p = 0; p < world; p++) {
                assertEquals(new Shape(r + 1, 2), got[p].getShape());
                assertEquals(p * 10 + r, got[p].getFloat(0, 0));
            }
            assertArrayEquals(new long[] {0, 7, 1, 7, 2, 7, 3, 7}, java.util.Arrays.copyOf(
                    padded(g.allGatherLongs(r, 7), 8), 8));
            NDArray max = m.create(values(r, 5));
            g.allReduce(max, ReduceOp.MAX);
            for (int i = 0; i < 5; i++) {
                float expected = Float.NEGATIVE_INFINITY;
                for (int p = 0; p < world; p++) {
                    expected = Math.max(expected, values(p, 5)[i]);
                }
                assertEquals(expected, max.toFloatArray()[i]);
            }
            NDArray sum = m.create(values(r, 64));
            g.allReduce(sum, ReduceOp.SUM);
            g.barrier();
            return sum.toFloatArray();
        });
        float[] expected = new float[64];
        for (int p = 0; p < world; p++) {
            float[] x = values(p, 64);
            for (int i = 0; i < 64; i++) {
                expected[i] += x[i];
            }
        }
        for (float[] s : sums) {
            assertArrayEquals(sums.get(0), s, 0f); // bit-identical on every rank
            assertArrayEquals(expected, s, 1e-5f);
        }
    }

    private static long[] padded(long[] x, int n) {
        long[] y = new long[n];
        for (int i = 0; i < n; i++) {
            y[i] = i < x.length ? x[i] : (i % 2 == 0 ? i / 2 : 7);
        }
        return y;
    }

    @Test
    void silentPeerTimesOutWithAClearMessage() throws Exception {
        Duration timeout = Duration.ofMillis(300);
        List<LocalProcessGroup> groups = LocalProcessGroup.create(2, timeout);
        try (NDManager m = NDManager.newBaseManager()) {
            long t0 = System.nanoTime();
            ProcessGroupTimeoutException e = assertThrows(ProcessGroupTimeoutException.class,
                    () -> groups.get(0).recv(m.zeros(new Shape(2)), 1));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms >= 290 && ms < 5000, "waited " + ms + " ms");
            assertEquals("recv on rank 0 timed out after 300 ms waiting for rank 1 (local process group of 2 ranks)",
                    e.getMessage());
            assertEquals(timeout, e.getTimeout());
            e = assertThrows(ProcessGroupTimeoutException.class, () -> groups.get(1).allGather(m.zeros(new Shape(1))));
            assertTrue(e.getMessage().startsWith("allGather on rank 1 timed out after 300 ms waiting for rank 0"),
                    e.getMessage());
        } finally {
            groups.forEach(LocalProcessGroup::close);
        }
    }

    @Test
    void abortMakesPeersFailFast() throws Exception {
        Duration timeout = Duration.ofSeconds(30);
        long t0 = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> Ranks.run(3, timeout, (g, m) -> {
            if (g.rank() == 2) {
                throw new IllegalStateException("rank 2 crashed");
            }
            g.allGather(m.zeros(new Shape(4)));
            return null;
        }));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 10_000, "peers took " + ms + " ms to notice the abort");
        assertEquals("rank 2 crashed", e.getMessage());
    }

    @Test
    void abortedOrClosedPeerIsNamed() throws Exception {
        List<LocalProcessGroup> groups = LocalProcessGroup.create(2, Duration.ofSeconds(30));
        try (NDManager m = NDManager.newBaseManager()) {
            groups.get(1).close();
            ProcessGroupException e = assertThrows(ProcessGroupException.class,
                    () -> groups.get(0).recv(m.zeros(new Shape(1)), 1));
            assertEquals("recv on rank 0: rank 1 closed the group without sending", e.getMessage());
            e = assertThrows(ProcessGroupException.class, () -> groups.get(0).send(m.zeros(new Shape(1)), 1));
            assertTrue(e.getMessage().contains("rank 1 has closed the group"), e.getMessage());
            groups.get(0).abort(new RuntimeException("boom"));
            e = assertThrows(ProcessGroupException.class, () -> groups.get(0).barrier());
            assertTrue(e.getMessage().contains("rank 0 aborted the group: java.lang.RuntimeException: boom"),
                    e.getMessage());
        } finally {
            groups.forEach(LocalProcessGroup::close);
        }
    }

    @Test
    void mismatchedCollectivesFailOnBothRanks() {
        Exception e = assertThrows(ProcessGroupException.class, () -> Ranks.run(2, (g, m) -> {
            if (g.rank() == 0) {
                g.allGather(m.zeros(new Shape(1)));
            } else {
                g.barrier();
            }
            return null;
        }));
        assertTrue(e.getMessage().contains("every rank must call the same collectives in the same order")
                || e.getMessage().contains("aborted the group"), e.getMessage());
    }

    @Test
    void badArgumentsAreNamed() throws Exception {
        List<LocalProcessGroup> groups = LocalProcessGroup.create(2);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.zeros(new Shape(2));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> groups.get(0).send(x, 0));
            assertEquals("send peer 0 is not valid on rank 0; allowed: ranks 0..1 other than 0", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> groups.get(0).irecv(x, 2));
            groups.get(1).send(m.zeros(new Shape(3), DataType.FLOAT32), 0);
            e = assertThrows(IllegalArgumentException.class, () -> groups.get(0).recv(x, 1));
            assertEquals("recv on rank 0 from rank 1: the buffer is (2) float32 but rank 1 sent (3) float32",
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> groups.get(0).allToAll(new NDArray[] {x}));
            assertTrue(e.getMessage().contains("one chunk per rank (2)"));
            assertThrows(IllegalArgumentException.class, () -> LocalProcessGroup.create(0));
        } finally {
            groups.forEach(LocalProcessGroup::close);
        }
    }
}
