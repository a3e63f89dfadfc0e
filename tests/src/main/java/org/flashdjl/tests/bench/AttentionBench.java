package org.flashdjl.tests.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionSpec;
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

import java.util.concurrent.TimeUnit;

/**
 * CPU time of the {@code math} and {@code online} backends: 8 heads, hd 128, fp32, Lq = Lk = seq, causal and
 * not. Run with {@code tests/bench/run-cpu-bench.sh} (README); peak memory comes from {@link MemoryProbe}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xmx2g"})
public class AttentionBench {

    /** Sequence length (Lq = Lk). */
    @Param({"1024", "4096"})
    public int seq;

    /** Whether the mask is causal. */
    @Param({"false", "true"})
    public boolean causal;

    /** The backend under test. */
    @Param({"math", "online"})
    public String backend;

    private NDManager manager;
    private NDArray q; // [1, 8, seq, 128]
    private NDArray k; // [1, 8, seq, 128]
    private NDArray v; // [1, 8, seq, 128]
    private AttentionSpec spec;

    /** Creates fresh random inputs. */
    @Setup(Level.Trial)
    public void setUp() {
        manager = NDManager.newBaseManager();
        Shape shape = new Shape(1, 8, seq, 128);
        q = manager.randomNormal(shape);
        k = manager.randomNormal(shape);
        v = manager.randomNormal(shape);
        spec = AttentionSpec.builder().optCausal(causal).build();
    }

    /** Frees the inputs. */
    @TearDown(Level.Trial)
    public void tearDown() {
        manager.close();
    }

    /**
     * One attention forward.
     *
     * @return a value JMH consumes
     */
    @Benchmark
    public float forward() {
        try (var out = Attention.forward(q, k, v, spec, backend)) {
            return out.getOutput().getShape().size();
        }
    }
}
