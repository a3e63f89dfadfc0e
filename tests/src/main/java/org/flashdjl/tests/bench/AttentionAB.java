package org.flashdjl.tests.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Locale;

/**
 * Interleaved A/B timing of the {@code math} and {@code online} backends in one JVM: rounds alternate the two on
 * the same inputs and the minimum per backend is reported, which cancels most of the drift a shared machine adds
 * to JMH's single-shot numbers.
 *
 * <pre>AttentionAB SEQ CAUSAL HEADS [ROUNDS]   e.g. AttentionAB 4096 false 8</pre>
 */
public final class AttentionAB {

    private AttentionAB() {}

    /**
     * Runs the comparison and prints one JSON line.
     *
     * @param args seq, causal, heads, optional rounds (default 6)
     */
    public static void main(String[] args) {
        int seq = Integer.parseInt(args[0]);
        boolean causal = Boolean.parseBoolean(args[1]);
        int heads = Integer.parseInt(args[2]);
        int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 6;
        String[] backends = {"math", "online"};
        double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(1, heads, seq, 128); // [batch, heads, seq, dim]
            NDArray q = manager.randomNormal(shape);
            NDArray k = manager.randomNormal(shape);
            NDArray v = manager.randomNormal(shape);
            AttentionSpec spec = AttentionSpec.builder().optCausal(causal).build();
            for (int r = 0; r < rounds; r++) {
                for (int i = 0; i < backends.length; i++) {
                    long t0 = System.nanoTime();
                    Attention.forward(q, k, v, spec, backends[i]).close();
                    best[i] = Math.min(best[i], (System.nanoTime() - t0) / 1e6);
                }
            }
        }
        System.out.printf(Locale.ROOT, "{\"seq\":%d,\"heads\":%d,\"dim\":128,\"causal\":%b,\"rounds\":%d,"
                + "\"mathMs\":%.1f,\"onlineMs\":%.1f}%n", seq, heads, causal, rounds, best[0], best[1]);
    }
}
