package org.flashdjl.examples.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.parallel.ContextParallel;
import org.flashdjl.ops.parallel.SequenceSharding;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.Ranks;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * {@link ContextParallelPrefill} on {@code LocalProcessGroup} worlds of 2, 3 and 4 ranks (threads, each with its own
 * copy of the model): the logits of every position (gathered from the ranks' shards) and of the last position (on
 * every rank) against the float64 reference model and against the single-rank model, for ring and Ulysses, both
 * shardings, a Llama, a Mistral (a window on every layer, plus sinks) and a Gemma 2 (alternating windows, softcaps)
 * checkpoint, odd lengths that do not divide the world; the KV caches continuing into decode; the refusals; and a
 * rank that fails or dies part-way through.
 */
class ContextParallelPrefillTest {

    private static final double TOL = 2e-4; // fp32 vs float64 and vs the single-rank model, relative to the logit scale

    @TempDir
    static Path tmp;

    private static final Map<Family, Path> DIRS = new EnumMap<>(Family.class);

    /** The checkpoints: 12 query heads (Ulysses on 2, 3 and 4 ranks), 4 KV heads (replicated on 3 ranks). */
    enum Family {
        LLAMA, MISTRAL, GEMMA2;

        LlamaConfig config() {
            LlamaConfig.Builder b = LlamaConfig.builder();
            switch (this) {
                case LLAMA:
                    return b.setSizes(96, 128, 2, 12, 4, 256).optRope(10000, RopeScaling.none()).optRmsNormEps(1e-5)
                            .optSpecialTokens(1, 2).build();
                case MISTRAL:
                    return b.optFamily(LlamaConfig.Family.MISTRAL).setSizes(96, 128, 2, 12, 4, 256).optHeadDim(16)
                            .optRope(10000, RopeScaling.none()).optSlidingWindow(5, 0).optSpecialTokens(1, 2).build();
                case GEMMA2:
                    return b.optFamily(LlamaConfig.Family.GEMMA2).setSizes(96, 128, 2, 12, 4, 256).optHeadDim(16)
                            .optRope(10000, RopeScaling.none()).optTieWordEmbeddings(true).optSlidingWindow(4, 0)
                            .optGemmaAttention(20, 3.0, 2.0).optSpecialTokens(2, 1).build();
                default:
                    throw new IllegalStateException();
            }
        }

        /** Each layer's window by the family's rule (-1: none), written here independently of the model. */
        int[] windows() {
            switch (this) {
                case MISTRAL:
                    return new int[] {5, 5};
                case GEMMA2:
                    return new int[] {4, -1}; // layer i slides when (i + 1) % 2 != 0
                default:
                    return new int[] {-1, -1};
            }
        }

        /** Sinks the Mistral case adds through the options (windowed layers only). */
        int sinks() {
            return this == MISTRAL ? 2 : 0;
        }
    }

    private static synchronized Path dir(Family f) throws Exception {
        Path d = DIRS.get(f);
        if (d == null) {
            d = tmp.resolve(f.name());
            DemoCheckpoint.write(d, f.config(), 300 + f.ordinal(), SafeDType.F32);
            DIRS.put(f, d);
        }
        return d;
    }

    private static LlamaModel load(Family f, NDManager m, String backend) throws Exception {
        return LlamaLoader.load(dir(f), m, AttentionOptions.builder().optBackend(backend).optSinkTokens(f.sinks())
                .build(), DataType.FLOAT32);
    }

    private static long[][] prompt(long seed, int batch, int length) {
        Random r = new Random(seed);
        long[][] t = new long[batch][length];
        for (long[] row : t) {
            for (int i = 0; i < length; i++) {
                row[i] = r.nextInt(256);
            }
        }
        return t;
    }

    private static NDArray tokens(NDManager m, long[][] ids) {
        return m.create(Arrays.stream(ids).flatMapToLong(Arrays::stream).toArray(),
                new Shape(ids.length, ids[0].length));
    }

    /** One rank's outcome: its shard logits [B, T_r, vocab] and last logits [B, vocab] on the host. */
    record RankOut(float[] shard, long shardLength, float[] last, int lastTokenRank, float[] lastOnly) {}

    @ParameterizedTest(name = "{0} {1} world {2} L {3} {4} B {5} {6}")
    @CsvSource({
        "LLAMA, ring, 2, 13, ZIGZAG, 1, math",
        "LLAMA, ring, 3, 13, ZIGZAG, 1, online",
        "LLAMA, ring, 4, 23, ZIGZAG, 1, math",
        "LLAMA, ring, 3, 13, CONTIGUOUS, 1, math",
        "LLAMA, ring, 2, 9, ZIGZAG, 2, math",
        "LLAMA, ulysses, 2, 13, CONTIGUOUS, 1, math",
        "LLAMA, ulysses, 3, 14, CONTIGUOUS, 1, online",
        "LLAMA, ulysses, 4, 9, CONTIGUOUS, 1, math",
        "MISTRAL, ring, 3, 17, ZIGZAG, 1, math",
        "MISTRAL, ring, 4, 19, ZIGZAG, 1, online",
        "MISTRAL, ulysses, 4, 17, CONTIGUOUS, 1, math",
        "GEMMA2, ring, 4, 11, ZIGZAG, 1, math",
        "GEMMA2, ring, 2, 15, ZIGZAG, 1, online",
        "GEMMA2, ulysses, 3, 16, ZIGZAG, 1, math",
    })
    void logitsEqualTheSingleRankModelAndTheFloat64Reference(Family f, String method, int world, int length,
            SequenceSharding sharding, int batch, String backend) throws Exception {
        long seed = 1000L * world + length + 7L * batch;
        String what = f + " " + method + " world " + world + " L " + length + " " + sharding + " B " + batch + " "
                + backend + " (prompt seed " + seed + ")";
        long[][] ids = prompt(seed, batch, length);
        List<RankOut> outs = Ranks.run(world, Duration.ofSeconds(30), (g, m) -> {
            LlamaModel model = load(f, m, backend);
            float[] lastOnly; // the default: logits of the last position only
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                    .optMethod(method).optSharding(sharding).build();
                    ContextParallelPrefill.Result r = p.prefill(tokens(m, ids))) {
                lastOnly = r.getLastLogits().toFloatArray();
            }
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                    .optMethod(method).optSharding(sharding).optShardLogits(true).build();
                    ContextParallelPrefill.Result r = p.prefill(tokens(m, ids))) {
                NDArray s = r.getShardLogits();
                return new RankOut(s.toFloatArray(), s.getShape().get(1), r.getLastLogits().toFloatArray(),
                        r.getLastTokenRank(), lastOnly);
            }
        });
        int vocab = f.config().getVocabSize();
        float[] all; // [B, L, vocab] in sequence order, from the ranks' shards
        float[] single; // the same from the single-rank model
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray[] shards = new NDArray[world];
            for (int r = 0; r < world; r++) {
                shards[r] = m.create(outs.get(r).shard(), new Shape(batch, outs.get(r).shardLength(), vocab));
            }
            all = ContextParallel.unshard(shards, 1, sharding).toFloatArray();
            LlamaModel model = load(f, m, "math");
            single = model.forward(new ParameterStore(m, false), tokens(m, ids), null, false).toFloatArray();
        }
        assertClose(single, all, what + ": every position vs the single-rank model");
        for (int b = 0; b < batch; b++) {
            double[][] ref = reference(f, ids[b]);
            float[] row = Arrays.copyOfRange(all, b * length * vocab, (b + 1) * length * vocab);
            assertMatchesReference(ref, row, what + " row " + b + ": every position vs float64");
        }
        float[] last = lastPositions(single, batch, length, vocab);
        for (int r = 0; r < world; r++) {
            assertArrayEquals(outs.get(0).last(), outs.get(r).last(), what + ": rank " + r + "'s last logits differ"
                    + " from rank 0's");
            assertEquals(outs.get(0).lastTokenRank(), outs.get(r).lastTokenRank(), what);
        }
        assertClose(last, outs.get(0).last(), what + ": last position vs the single-rank model");
        for (int r = 0; r < world; r++) {
            assertClose(last, outs.get(r).lastOnly(), what + ": rank " + r + "'s last position without shard logits");
        }
        int owner = outs.get(0).lastTokenRank();
        assertTrue(SequenceSharding.valueOf(sharding.name()).pieces(length, owner, world).stream()
                .anyMatch(p -> p.globalStart() + p.length() == length), what + ": rank " + owner
                + " does not hold the last token");
    }

    private static double[][] reference(Family f, long[] ids) throws Exception {
        LlamaConfig c = f.config();
        int[] tokens = Arrays.stream(ids).mapToInt(x -> (int) x).toArray();
        return new LlamaReference(dir(f), c).logits(tokens, f.windows(), f.sinks(),
                LlamaReference.plainInvFreq(c.getRopeTheta(), c.getHeadDim(), 1), 1);
    }

    private static float[] lastPositions(float[] logits, int batch, int length, int vocab) {
        float[] out = new float[batch * vocab];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(logits, (b * length + length - 1) * vocab, out, b * vocab, vocab);
        }
        return out;
    }

    @Test
    void oneRankIsThePlainPrefill() throws Exception {
        long[][] ids = prompt(5, 1, 12);
        List<LocalProcessGroup> groups = LocalProcessGroup.create(1);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = load(Family.GEMMA2, m, "online");
            float[] want = model.forward(new ParameterStore(m, false), tokens(m, ids), null, true).toFloatArray();
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(groups.get(0))
                    .build();
                    ContextParallelPrefill.Result r = p.prefill(m, Arrays.stream(ids[0]).mapToInt(x -> (int) x)
                            .toArray())) {
                assertEquals(0, r.getLastTokenRank());
                assertEquals(12, r.getLength());
                assertClose(want, r.getLastLogits().toFloatArray(), "one rank vs model.forward (prompt seed 5)");
                assertThrows(IllegalStateException.class, r::getShardLogits);
                assertTrue(r.getKeys().isEmpty());
            }
        } finally {
            groups.get(0).close();
        }
    }

    /** Prefill across 3 ranks, caches gathered on every rank, 2 tokens decoded there: the single-rank logits. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"ring, ZIGZAG", "ulysses, CONTIGUOUS"})
    void gatheredCachesContinueDecoding(String method, SequenceSharding sharding) throws Exception {
        Family f = Family.MISTRAL;
        long[][] ids = prompt(77, 1, 13);
        long[] next = {42, 7};
        List<float[]> decoded = Ranks.run(3, Duration.ofSeconds(30), (g, m) -> {
            LlamaModel model = load(f, m, "math");
            ParameterStore ps = new ParameterStore(m, false);
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                    .optMethod(method).optSharding(sharding).optKeepKeysAndValues(true).build();
                    ContextParallelPrefill.Result r = p.prefill(tokens(m, ids))) {
                assertEquals(2, r.getKeys().size(), "keys per layer");
                assertEquals(new Shape(1, r.getPieces().stream().mapToLong(SequenceSharding.Piece::length).sum(),
                        4, 16), r.getKeys().get(0).getShape());
                // dense, as the device kernels and NCCL take them
                DeviceTensor.fromNDArray(r.getKeys().get(1));
                DeviceTensor.fromNDArray(r.getValues().get(1));
                KvCache[] caches = r.gatherCaches(m);
                try {
                    assertEquals(13, caches[0].nextPosition());
                    float[] out = new float[2 * 256];
                    for (int i = 0; i < next.length; i++) {
                        NDArray logits = model.forward(ps, m.create(new long[] {next[i]}, new Shape(1, 1)), caches,
                                true); // [1, 1, vocab]
                        System.arraycopy(logits.toFloatArray(), 0, out, i * 256, 256);
                    }
                    return out;
                } finally {
                    for (KvCache c : caches) {
                        c.close();
                    }
                }
            }
        });
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = load(f, m, "math");
            ParameterStore ps = new ParameterStore(m, false);
            for (int i = 0; i < next.length; i++) {
                long[][] longer = {Arrays.copyOf(ids[0], 13 + i + 1)};
                for (int j = 0; j <= i; j++) {
                    longer[0][13 + j] = next[j];
                }
                float[] want = model.forward(ps, tokens(m, longer), null, true).toFloatArray();
                for (int r = 0; r < 3; r++) {
                    assertClose(want, Arrays.copyOfRange(decoded.get(r), i * 256, (i + 1) * 256), method
                            + ": decode step " + i + " on rank " + r + " after the gathered caches (prompt seed 77)");
                }
            }
        }
    }

    @Test
    void refusesWhatCannotRunBeforeCommunicatingAndKeepsTheGroupUsable() throws Exception {
        long[][] ok = prompt(3, 1, 9);
        List<float[]> lasts = Ranks.run(4, Duration.ofSeconds(30), (g, m) -> {
            LlamaModel model = load(Family.LLAMA, m, "math");
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g).build()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> p.prefill(tokens(m, prompt(3, 1, 7))));
                assertTrue(e.getMessage().contains("7 tokens is too short") && e.getMessage().contains("at least 8"),
                        e.getMessage());
                long[][] bad = prompt(3, 1, 9);
                bad[0][4] = 256;
                e = assertThrows(IllegalArgumentException.class, () -> p.prefill(tokens(m, bad)));
                assertTrue(e.getMessage().contains("token id 256 at [0, 4]") && e.getMessage().contains("0..255"),
                        e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> p.prefill(m.create(new float[9],
                        new Shape(1, 9))));
                assertTrue(e.getMessage().contains("int32 or int64"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> p.prefill(m.create(new long[9])));
                assertTrue(e.getMessage().contains("[batch, seq]"), e.getMessage());
                try (ContextParallelPrefill.Result r = p.prefill(tokens(m, ok))) { // the group still works
                    return r.getLastLogits().toFloatArray();
                }
            }
        });
        for (float[] l : lasts) {
            assertArrayEquals(lasts.get(0), l);
        }
        List<LocalProcessGroup> five = LocalProcessGroup.create(5);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = load(Family.LLAMA, m, "math");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ContextParallelPrefill.builder().setModel(model).setGroup(five.get(0)).optMethod("ulysses")
                            .build());
            assertTrue(e.getMessage().contains("12 query heads do not divide by world size 5")
                    && e.getMessage().contains("[1, 2, 3, 4, 6, 12]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ContextParallelPrefill.builder().setModel(model)
                    .setGroup(five.get(0)).optBackend("nope").build());
            assertTrue(e.getMessage().contains("unknown attention backend 'nope'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> ContextParallelPrefill.builder().setModel(model).build());
            assertTrue(e.getMessage().contains("process group"), e.getMessage());
        } finally {
            five.forEach(LocalProcessGroup::close);
        }
    }

    @Test
    void aRankWithAnotherPromptFailsEveryRankAlikeAndTheGroupStaysUsable() throws Exception {
        List<String> messages = Ranks.run(3, Duration.ofSeconds(30), (g, m) -> {
            LlamaModel model = load(Family.LLAMA, m, "math");
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g).build()) {
                long[][] ids = prompt(9, 1, 12);
                if (g.rank() == 2) {
                    ids[0][11] = (ids[0][11] + 1) % 256;
                }
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> p.prefill(tokens(m, ids)));
                try (ContextParallelPrefill.Result r = p.prefill(tokens(m, prompt(9, 1, 12)))) {
                    assertEquals(new Shape(1, 256), r.getLastLogits().getShape());
                }
                return e.getMessage();
            }
        });
        for (String msg : messages) {
            assertEquals(messages.get(0), msg, "every rank gives the same verdict");
        }
        assertTrue(messages.get(0).contains("rank 2 prompt hash") && !messages.get(0).contains("rank 1"),
                messages.get(0));
    }

    // ------------------------------------------------------------------------------------------- faults

    /** A rank's end: its failure (null for success) and when it ended, ms after the start. */
    record End(Throwable failure, long millis) {}

    /**
     * Runs a prefill on every rank (3, ring or Ulysses, LLAMA); {@code victim}'s thread throws after layer 0 (its
     * layer listener). {@code dead}: the victim's process is gone, so it neither aborts nor closes its group (a
     * killed process); otherwise its prefill aborts the group as it fails.
     */
    private static List<End> failOneRank(String method, int victim, boolean dead, Duration timeout)
            throws Exception {
        return failOneRank(method, victim, dead, -1, timeout);
    }

    /** As above; with {@code dieAtExchange >= 1} the victim dies instead in its n-th ring exchange (mid-layer). */
    private static List<End> failOneRank(String method, int victim, boolean dead, int dieAtExchange,
            Duration timeout) throws Exception {
        int world = 3;
        List<LocalProcessGroup> groups = LocalProcessGroup.create(world, timeout);
        List<End> ends = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        End[] result = new End[world];
        long t0 = System.nanoTime();
        for (int r = 0; r < world; r++) {
            int rank = r;
            Thread t = new Thread(() -> {
                try (NDManager m = NDManager.newBaseManager()) {
                    LlamaModel model = load(Family.LLAMA, m, "math");
                    org.flashdjl.ops.parallel.group.ProcessGroup g = rank == victim && dead
                            ? new DeadAfterFailure(groups.get(rank), dieAtExchange) : groups.get(rank);
                    try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                            .optMethod(method).optLayerListener(layer -> {
                                if (rank == victim && layer == 0 && dieAtExchange < 0) {
                                    throw new IllegalStateException("rank " + victim + " fails after layer 0");
                                }
                            }).build();
                            ContextParallelPrefill.Result out = p.prefill(tokens(m, prompt(21, 1, 15)))) {
                        result[rank] = new End(null, (System.nanoTime() - t0) / 1_000_000);
                    }
                } catch (Throwable e) {
                    result[rank] = new End(e, (System.nanoTime() - t0) / 1_000_000);
                }
            }, "cp-prefill-rank-" + r);
            threads.add(t);
            t.start();
        }
        long limit = timeout.toMillis() + 20_000;
        for (Thread t : threads) {
            t.join(limit);
            assertTrue(!t.isAlive(), t.getName() + " still running after " + limit + " ms: a rank hangs");
        }
        groups.forEach(LocalProcessGroup::close);
        ends.addAll(Arrays.asList(result));
        return ends;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"ring", "ulysses"})
    void aRankThatFailsEndsEveryOtherRankAtOnceNamingIt(String method) throws Exception {
        Duration timeout = Duration.ofSeconds(60);
        List<End> ends = failOneRank(method, 1, false, timeout);
        assertTrue(ends.get(1).failure() instanceof IllegalStateException, String.valueOf(ends.get(1).failure()));
        for (int r : new int[] {0, 2}) {
            Throwable e = ends.get(r).failure();
            assertTrue(e instanceof ProcessGroupException, "rank " + r + ": " + e);
            assertTrue(e.getMessage().contains("rank 1 aborted the group")
                    && e.getMessage().contains("rank 1 fails after layer 0"), "rank " + r + ": " + e.getMessage());
            assertTrue(ends.get(r).millis() < timeout.toMillis() / 2, "rank " + r + " ended after "
                    + ends.get(r).millis() + " ms, not at once (timeout " + timeout + ")");
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"ring", "ulysses"})
    void aDeadRankEndsEveryOtherRankWithinTheTimeoutNamingIt(String method) throws Exception {
        Duration timeout = Duration.ofMillis(1500);
        List<End> ends = failOneRank(method, 1, true, timeout);
        for (int r : new int[] {0, 2}) {
            Throwable e = ends.get(r).failure();
            assertTrue(e instanceof ProcessGroupException, "rank " + r + ": " + e);
            assertTrue(e.getMessage().contains("timed out after 1500 ms waiting for rank 1"),
                    "rank " + r + " does not name the dead rank 1: " + e.getMessage());
            assertTrue(ends.get(r).millis() < timeout.toMillis() + 15_000, "rank " + r + " ended after "
                    + ends.get(r).millis() + " ms (timeout " + timeout.toMillis() + " ms)");
        }
    }

    /**
     * A ring exchange that dies in the middle of layer 0: the victim's successor waits on it directly and names
     * it; a rank further along the ring waits on a live rank that is itself stuck, so it names that rank (and the
     * victim only if the successor's abort reaches it first). Everyone ends within the timeout.
     */
    @Test
    void aRankDyingInARingExchangeEndsEveryRankWithinTheTimeout() throws Exception {
        Duration timeout = Duration.ofMillis(1500);
        List<End> ends = failOneRank("ring", 1, true, 2, timeout);
        for (int r : new int[] {0, 2}) {
            Throwable e = ends.get(r).failure();
            assertTrue(e instanceof ProcessGroupException, "rank " + r + ": " + e);
            assertTrue(ends.get(r).millis() < timeout.toMillis() + 15_000, "rank " + r + " ended after "
                    + ends.get(r).millis() + " ms (timeout " + timeout.toMillis() + " ms)");
        }
        assertTrue(ends.get(2).failure().getMessage().contains("waiting for rank 1"),
                "the successor does not name the dead rank 1: " + ends.get(2).failure().getMessage());
    }

    /**
     * The victim's view of its group once its process is gone: abort and close do nothing (no one is left);
     * optionally it dies (throws without sending) in its n-th {@code batchIsendIrecv}.
     */
    private static final class DeadAfterFailure implements org.flashdjl.ops.parallel.group.ProcessGroup {
        private final org.flashdjl.ops.parallel.group.ProcessGroup g;
        private final int dieAtExchange;
        private int exchanges;

        DeadAfterFailure(org.flashdjl.ops.parallel.group.ProcessGroup g, int dieAtExchange) {
            this.g = g;
            this.dieAtExchange = dieAtExchange;
        }

        @Override
        public int rank() {
            return g.rank();
        }

        @Override
        public int size() {
            return g.size();
        }

        @Override
        public Duration timeout() {
            return g.timeout();
        }

        @Override
        public String backendName() {
            return g.backendName();
        }

        @Override
        public org.flashdjl.ops.parallel.group.Work batchIsendIrecv(
                List<org.flashdjl.ops.parallel.group.P2POp> ops) {
            if (++exchanges == dieAtExchange) {
                throw new IllegalStateException("rank " + g.rank() + " dies in ring exchange " + exchanges);
            }
            return g.batchIsendIrecv(ops);
        }

        @Override
        public NDArray[] allGather(NDArray tensor) {
            return g.allGather(tensor);
        }

        @Override
        public NDArray[] allToAll(NDArray[] chunks) {
            return g.allToAll(chunks);
        }

        @Override
        public void allReduce(NDArray tensor, org.flashdjl.ops.parallel.group.ReduceOp op) {
            g.allReduce(tensor, op);
        }

        @Override
        public long[] allGatherLongs(long... values) {
            return g.allGatherLongs(values);
        }

        @Override
        public void barrier() {
            g.barrier();
        }

        @Override
        public void abort(Throwable cause) {}

        @Override
        public void close() {}
    }

    // ------------------------------------------------------------------------------------------- helpers

    private static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": lengths");
        double max = 0;
        double scale = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i] - got[i]));
            scale = Math.max(scale, Math.abs(want[i]));
        }
        assertTrue(scale > 0.1, what + ": degenerate logits");
        assertTrue(max <= TOL * Math.max(1, scale), what + ": max |diff| " + max + " (logit scale " + scale + ")");
    }

    private static void assertMatchesReference(double[][] ref, float[] logits, String what) {
        int vocab = ref[0].length;
        float[] want = new float[ref.length * vocab];
        for (int t = 0; t < ref.length; t++) {
            for (int v = 0; v < vocab; v++) {
                want[t * vocab + v] = (float) ref[t][v];
            }
        }
        assertClose(want, logits, what);
    }

    @Test
    void positionsFollowThePieces() {
        List<SequenceSharding.Piece> pieces = SequenceSharding.ZIGZAG.pieces(11, 1, 2); // chunks 1 and 2 of 4
        int[] pos = ContextParallelPrefill.positions(pieces, 2, 6);
        assertArrayEquals(new int[] {3, 4, 5, 6, 7, 8, 3, 4, 5, 6, 7, 8}, pos);
        pieces = SequenceSharding.ZIGZAG.pieces(11, 0, 2); // chunks 0 and 3
        assertArrayEquals(new int[] {0, 1, 2, 9, 10}, ContextParallelPrefill.positions(pieces, 1, 5));
    }
}
