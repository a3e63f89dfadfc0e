package org.flashdjl.tests.bench;

import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.kvcache.BlockKvCache;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Per-step cost of {@link BlockKvCache} (beforeUpdate + update + cachedK/cachedV + afterUpdate) as
 * the stream grows: it depends on the window (the roll copies {@code window - chunk} slots), not on
 * how many tokens were streamed. Keys and values {@code [1, 8, seq, 64]} fp32, chunk 16, window
 * 1020, sink 4 (sink + window = 1024 must be a multiple of the chunk).
 *
 * <p>Two ways to run it:
 *
 * <ul>
 *   <li>JMH ({@code org.openjdk.jmh.Main BlockKvCacheBench}): the trial setup streams {@code
 *       streamTokens} tokens for real, then each benchmark invocation is one more step (so the
 *       stream keeps growing past {@code streamTokens} during the measurement).
 *   <li>{@link #main(String[])} without JMH: one stream of 1M tokens; at the marks 1k, 16k, 128k
 *       and 1M streamed tokens it times the next {@value #MEASURE_STEPS} steps and prints ns/step
 *       (mean, p50, p90), the live NDArray count and the process RSS.
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xmx2g"})
public class BlockKvCacheBench {

    static final int HEADS = 8;
    static final int HEAD_DIM = 64;
    static final int CHUNK = 16;
    static final int WINDOW = 1020;
    static final int SINK = 4;
    static final int MEASURE_STEPS = 512;
    static final int CHUNK_VARIANTS = 4;

    /** Tokens streamed before the measurement. */
    @Param({"1024", "16384", "131072", "1048576"})
    public long streamTokens;

    private NDManager manager;
    private BlockKvCache cache;
    private NDArray[] ks; // CHUNK_VARIANTS x [1, 8, chunk, 64]
    private NDArray[] vs; // CHUNK_VARIANTS x [1, 8, chunk, 64]
    private long chunkIdx = -1;

    /** Allocates the cache and streams {@code streamTokens} tokens through it. */
    @Setup(Level.Trial)
    public void setUp() {
        manager = NDManager.newBaseManager();
        cache = newCache(manager);
        ks = new NDArray[CHUNK_VARIANTS];
        vs = new NDArray[CHUNK_VARIANTS];
        Shape chunk = new Shape(1, HEADS, CHUNK, HEAD_DIM);
        for (int i = 0; i < CHUNK_VARIANTS; i++) {
            ks[i] = manager.randomNormal(chunk);
            vs[i] = manager.randomNormal(chunk);
        }
        while ((chunkIdx + 1) * CHUNK < streamTokens) {
            step();
        }
    }

    /** Frees the cache and the inputs. */
    @TearDown(Level.Trial)
    public void tearDown() {
        cache.close();
        manager.close();
    }

    /**
     * One streaming step.
     *
     * @param bh consumes the cached arrays
     */
    @Benchmark
    public void step(Blackhole bh) {
        long c = ++chunkIdx;
        int which = (int) (c % CHUNK_VARIANTS);
        cache.beforeUpdate(c);
        cache.update(ks[which], vs[which]);
        bh.consume(cache.cachedK());
        bh.consume(cache.cachedV());
        cache.afterUpdate(c);
    }

    private long step() {
        long c = ++chunkIdx;
        int which = (int) (c % CHUNK_VARIANTS);
        long t0 = System.nanoTime();
        cache.beforeUpdate(c);
        cache.update(ks[which], vs[which]);
        NDArray k = cache.cachedK();
        NDArray v = cache.cachedV();
        cache.afterUpdate(c);
        long dt = System.nanoTime() - t0;
        if (k.isReleased() || v.isReleased()) {
            throw new AssertionError("cached arrays released");
        }
        return dt;
    }

    static BlockKvCache newCache(NDManager manager) {
        return BlockKvCache.builder()
                .setKeyShape(new Shape(1, HEADS, -1, HEAD_DIM))
                .setValueShape(new Shape(1, HEADS, -1, HEAD_DIM))
                .setSeqDim(2)
                .setChunkSize(CHUNK)
                .setWindowSize(WINDOW)
                .optSinkSize(SINK)
                .optDataType(DataType.FLOAT32)
                .build(manager);
    }

    /**
     * Runs without JMH: streams up to the largest mark and prints ns/step at each mark.
     *
     * @param args optional stream-length marks in tokens (default 1024 16384 131072 1048576)
     */
    public static void main(String[] args) {
        long[] marks = {1024, 16_384, 131_072, 1_048_576};
        if (args.length > 0) {
            marks = Arrays.stream(args).mapToLong(Long::parseLong).sorted().toArray();
        }
        BlockKvCacheBench b = new BlockKvCacheBench();
        b.streamTokens = 0;
        b.setUp();
        try {
            System.out.printf(
                    Locale.ROOT,
                    "BlockKvCache step (before+update+cachedK/V+after), [1, %d, seq, %d] fp32, chunk %d,"
                            + " window %d, sink %d, %s, %d cores, %d steps timed per mark%n",
                    HEADS,
                    HEAD_DIM,
                    CHUNK,
                    WINDOW,
                    SINK,
                    b.manager.getDevice(),
                    Runtime.getRuntime().availableProcessors(),
                    MEASURE_STEPS);
            // the filling phase, for reference (no roll)
            long[] fill = new long[(SINK + WINDOW) / CHUNK];
            for (int i = 0; i < fill.length; i++) {
                fill[i] = b.step();
            }
            report("filling (first " + fill.length * CHUNK + " tokens)", fill, b);
            for (long mark : marks) {
                while ((b.chunkIdx + 1) * CHUNK < mark) {
                    b.step();
                }
                long[] t = new long[MEASURE_STEPS];
                for (int i = 0; i < MEASURE_STEPS; i++) {
                    t[i] = b.step();
                }
                report("at " + mark + " tokens", t, b);
            }
        } finally {
            b.tearDown();
        }
    }

    private static void report(String label, long[] ns, BlockKvCacheBench b) {
        long[] s = ns.clone();
        Arrays.sort(s);
        double mean = Arrays.stream(s).average().orElse(0);
        System.out.printf(
                Locale.ROOT,
                "%-28s mean %9.0f ns/step  p50 %9d  p90 %9d  (stream %d tokens, live NDArrays %d, RSS %s)%n",
                label,
                mean,
                s[s.length / 2],
                s[s.length * 9 / 10],
                (b.chunkIdx + 1) * CHUNK,
                ((BaseNDManager) b.manager).getManagedArrays().size(),
                rss());
    }

    private static String rss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return line.substring(6).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            return "n/a";
        }
        return "n/a";
    }
}
