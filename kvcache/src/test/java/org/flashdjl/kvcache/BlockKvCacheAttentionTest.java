package org.flashdjl.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

/**
 * Attention over {@code cachedK()/cachedV()} (with sinks) equals attention over the full sequence
 * with the equivalent sink + window mask, at every step of a stream (filling and steady state,
 * with repeated chunks that overwrite), for bhsd and bshd layouts.
 *
 * <p>Each chunk's queries attend over the cache with the mask (causal, window left {@code L},
 * {@code sinkTokens = sinkSize}), bottom-right aligned in the cache; the reference lets the same
 * queries attend over the whole stream so far with the same mask. The two agree whenever {@code L
 * <= windowSize - chunkSize}: every key such a query may see is still in the cache. With {@code
 * chunkSize == 1} the plain causal mask over the cache equals the full-sequence mask with {@code L
 * = windowSize - 1} and the sinks.
 *
 * <p>The RoPE variant stores un-rotated keys, rotates the cached keys with {@link
 * BlockKvCache#tokenPositions()} (original positions) and the queries with their stream positions,
 * and compares with the full sequence rotated by position: it checks that the positions the cache
 * reports are the ones its slots hold.
 *
 * <p>The cache side runs the library's operator ({@link Attention} with causal, window and sinks,
 * alternating the math and online backends) on float64 tensors; the full-sequence side is the float64 loop
 * {@link #attention}, independent of the library.
 */
class BlockKvCacheAttentionTest {

    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 8;
    private static final int DV = 6;

    static Stream<Arguments> cases() {
        return Stream.of(
                // layout, chunk, window, sink, cacheLeft (-1 = none), fullLeft, rope
                Arguments.of("bhsd", 4, 12, 4, 8, 8, false),
                Arguments.of("bhsd", 4, 12, 4, 3, 3, false),
                Arguments.of("bshd", 4, 12, 0, 8, 8, false),
                Arguments.of("bshd", 3, 10, 5, 7, 7, false),
                Arguments.of("bhsd", 1, 9, 4, -1, 8, false), // decode: plain causal over the cache
                Arguments.of("bshd", 1, 7, 0, -1, 6, false),
                Arguments.of("bhsd", 4, 12, 4, 8, 8, true),
                Arguments.of("bshd", 1, 9, 4, -1, 8, true));
    }

    @ParameterizedTest(name = "[{index}] {0} chunk={1} window={2} sink={3} cacheLeft={4} fullLeft={5} rope={6}")
    @MethodSource("cases")
    void cachedAttentionEqualsFullSequenceWithSinkWindowMask(
            String layout, int chunk, int window, int sink, int cacheLeft, int fullLeft, boolean rope) {
        boolean bhsd = layout.equals("bhsd");
        int seqDim = bhsd ? 2 : 1;
        int total = sink + window;
        int chunks = 3 * total / chunk + 3;
        int n = chunks * chunk;
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        // the full stream: q/k/v[b][h][t][d]
        double[][][][] q = randn(rnd, n, D);
        double[][][][] k = randn(rnd, n, D);
        double[][][][] v = randn(rnd, n, DV);
        try (NDManager base = NDManager.newBaseManager();
                BlockKvCache cache =
                        BlockKvCache.builder()
                                .setKeyShape(bhsd ? new Shape(B, H, -1, D) : new Shape(B, -1, H, D))
                                .setValueShape(bhsd ? new Shape(B, H, -1, DV) : new Shape(B, -1, H, DV))
                                .setSeqDim(seqDim)
                                .setChunkSize(chunk)
                                .setWindowSize(window)
                                .optSinkSize(sink)
                                .optDataType(DataType.FLOAT64)
                                .build(base)) {
            long chunkIdx = -1;
            int checked = 0;
            while (chunkIdx < chunks - 1) {
                boolean repeat = chunkIdx >= 0 && rnd.nextDouble() < 0.25;
                if (repeat) { // overwrite the last chunk with fresh data
                    refill(rnd, q, k, v, (int) chunkIdx * chunk, chunk);
                } else {
                    chunkIdx++;
                }
                int t0 = (int) chunkIdx * chunk;
                int streamLen = t0 + chunk;
                try (NDManager m = base.newSubManager()) {
                    cache.beforeUpdate(chunkIdx);
                    cache.update(toArray(m, k, t0, chunk, D, bhsd), toArray(m, v, t0, chunk, DV, bhsd));
                    double[][][][] ck = fromArray(cache.cachedK(), D, bhsd);
                    double[][][][] cv = fromArray(cache.cachedV(), DV, bhsd);
                    long[] pos = cache.tokenPositions();
                    cache.afterUpdate(chunkIdx);
                    int lc = pos.length;
                    assertEquals(Math.min(streamLen, total), lc);
                    for (int b = 0; b < B; b++) {
                        for (int h = 0; h < H; h++) {
                            double[][] qc = slice(q[b][h], t0, chunk);
                            double[][] keysCache = ck[b][h];
                            double[][] keysFull = slice(k[b][h], 0, streamLen);
                            if (rope) {
                                qc = rope(qc, t0);
                                keysCache = rope(keysCache, pos);
                                keysFull = rope(keysFull, 0);
                            }
                            double[][] outCache = operator(m, qc, keysCache, cv[b][h], cacheLeft, sink,
                                    checked % 2 == 0 ? "math" : "online");
                            double[][] outFull =
                                    attention(qc, keysFull, slice(v[b][h], 0, streamLen), fullLeft, sink);
                            for (int i = 0; i < chunk; i++) {
                                assertArrayEquals(
                                        outFull[i],
                                        outCache[i],
                                        1e-6, // the operator's scale is an fp32 1/sqrt(d)
                                        "seed " + seed + " chunk " + chunkIdx + " b" + b + " h" + h + " query " + i);
                            }
                            checked++;
                        }
                    }
                }
            }
            assertTrue(cache.isSteadyState());
            assertTrue(checked > 0);
        }
    }

    /** The library's attention operator on one head: q [Lq, D], k [Lk, D], v [Lk, Dv] as float64 [1, 1, L, D]. */
    static double[][] operator(NDManager m, double[][] q, double[][] k, double[][] v, int left, int sinkTokens,
            String backend) {
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optWindowBounds(left, -1).optSinkTokens(sinkTokens)
                .build();
        try (AttentionOutput out = Attention.forward(head(m, q), head(m, k), head(m, v), spec, backend)) {
            double[] flat = out.getOutput().toDoubleArray();
            int dv = v[0].length;
            double[][] rows = new double[q.length][dv];
            for (int i = 0; i < q.length; i++) {
                System.arraycopy(flat, i * dv, rows[i], 0, dv);
            }
            return rows;
        }
    }

    private static NDArray head(NDManager m, double[][] rows) {
        double[] flat = new double[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, flat, i * rows[0].length, rows[0].length);
        }
        return m.create(flat, new Shape(1, 1, rows.length, rows[0].length));
    }

    /**
     * Masked softmax attention in float64, scale 1/sqrt(d), causal bottom-right aligned: query i
     * sees key j iff {@code j <= pos(i)} and ({@code left < 0} or {@code j >= pos(i) - left} or
     * {@code j < sinkTokens}), with {@code pos(i) = i + Lk - Lq}.
     */
    static double[][] attention(double[][] q, double[][] k, double[][] v, int left, int sinkTokens) {
        int lq = q.length;
        int lk = k.length;
        int dv = v[0].length;
        double scale = 1.0 / Math.sqrt(q[0].length);
        double[][] out = new double[lq][dv];
        for (int i = 0; i < lq; i++) {
            int pos = i + lk - lq;
            double[] s = new double[lk];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < lk; j++) {
                boolean visible = j <= pos && (left < 0 || j >= pos - left || j < sinkTokens);
                if (!visible) {
                    s[j] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                double dot = 0;
                for (int d = 0; d < q[i].length; d++) {
                    dot += q[i][d] * k[j][d];
                }
                s[j] = dot * scale;
                max = Math.max(max, s[j]);
            }
            if (max == Double.NEGATIVE_INFINITY) {
                continue; // no visible key: output 0
            }
            double sum = 0;
            for (int j = 0; j < lk; j++) {
                if (s[j] != Double.NEGATIVE_INFINITY) {
                    double p = Math.exp(s[j] - max);
                    sum += p;
                    for (int d = 0; d < dv; d++) {
                        out[i][d] += p * v[j][d];
                    }
                }
            }
            for (int d = 0; d < dv; d++) {
                out[i][d] /= sum;
            }
        }
        return out;
    }

    /** Rotary embedding (pairs (2m, 2m+1), base 10000) of rows at positions start, start+1, ... */
    static double[][] rope(double[][] x, long start) {
        long[] pos = new long[x.length];
        for (int i = 0; i < x.length; i++) {
            pos[i] = start + i;
        }
        return rope(x, pos);
    }

    static double[][] rope(double[][] x, long[] pos) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            int d = x[i].length;
            out[i] = new double[d];
            for (int m = 0; m < d / 2; m++) {
                double theta = pos[i] * Math.pow(10000.0, -2.0 * m / d);
                double c = Math.cos(theta);
                double s = Math.sin(theta);
                out[i][2 * m] = x[i][2 * m] * c - x[i][2 * m + 1] * s;
                out[i][2 * m + 1] = x[i][2 * m] * s + x[i][2 * m + 1] * c;
            }
        }
        return out;
    }

    private static double[][][][] randn(Random rnd, int n, int d) {
        double[][][][] x = new double[B][H][n][d];
        refillOne(rnd, x, 0, n);
        return x;
    }

    private static void refill(Random rnd, double[][][][] q, double[][][][] k, double[][][][] v, int t0, int len) {
        refillOne(rnd, q, t0, len);
        refillOne(rnd, k, t0, len);
        refillOne(rnd, v, t0, len);
    }

    private static void refillOne(Random rnd, double[][][][] x, int t0, int len) {
        for (double[][][] xb : x) {
            for (double[][] xh : xb) {
                for (int t = t0; t < t0 + len; t++) {
                    for (int d = 0; d < xh[t].length; d++) {
                        xh[t][d] = rnd.nextGaussian();
                    }
                }
            }
        }
    }

    private static double[][] slice(double[][] x, int t0, int len) {
        double[][] out = new double[len][];
        System.arraycopy(x, t0, out, 0, len);
        return out;
    }

    /** Tokens [t0, t0 + len) as a bhsd or bshd float64 array. */
    private static NDArray toArray(NDManager m, double[][][][] x, int t0, int len, int d, boolean bhsd) {
        double[] flat = new double[B * H * len * d];
        int i = 0;
        if (bhsd) {
            for (int b = 0; b < B; b++) {
                for (int h = 0; h < H; h++) {
                    for (int t = 0; t < len; t++) {
                        for (int e = 0; e < d; e++) {
                            flat[i++] = x[b][h][t0 + t][e];
                        }
                    }
                }
            }
            return m.create(flat, new Shape(B, H, len, d));
        }
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < len; t++) {
                for (int h = 0; h < H; h++) {
                    for (int e = 0; e < d; e++) {
                        flat[i++] = x[b][h][t0 + t][e];
                    }
                }
            }
        }
        return m.create(flat, new Shape(B, len, H, d));
    }

    /** A bhsd or bshd array as [b][h][t][d]. */
    private static double[][][][] fromArray(NDArray a, int d, boolean bhsd) {
        double[] flat = StreamModel.read(a);
        int len = (int) a.getShape().get(bhsd ? 2 : 1);
        double[][][][] x = new double[B][H][len][d];
        int i = 0;
        for (int b = 0; b < B; b++) {
            for (int o1 = 0; o1 < (bhsd ? H : len); o1++) {
                for (int o2 = 0; o2 < (bhsd ? len : H); o2++) {
                    int h = bhsd ? o1 : o2;
                    int t = bhsd ? o2 : o1;
                    for (int e = 0; e < d; e++) {
                        x[b][h][t][e] = flat[i++];
                    }
                }
            }
        }
        return x;
    }
}
