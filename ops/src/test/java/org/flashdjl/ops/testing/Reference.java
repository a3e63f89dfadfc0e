package org.flashdjl.ops.testing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Random;

/**
 * A float64 attention reference in plain Java loops, written from docs/SEMANTICS.md and independent of DJL
 * math and of the library's mask code. Tensors are flat bhsd arrays.
 */
public final class Reference {

    /** Reference options (a plain restatement of the spec, kept independent of AttentionSpec). */
    public static final class Options {
        public double scale;
        public boolean causal;
        public int windowLeft = -1;
        public int windowRight = -1;
        public int sinkTokens;
        public float[] alibi; // [Hq] or null
        public double softcap;
        /** Position of query row 0; null = Lk - Lq. */
        public Long queryStart;
        /** Index of key 0. */
        public long keyStart;
        /** Round every intermediate to float32: the "low-precision run of the same math" of the error budget. */
        public boolean float32;
    }

    /** A dense bhsd result. */
    public static final class Result {
        public final double[] out; // [B, Hq, Lq, Dv]
        public final double[] lse; // [B, Hq, Lq]

        Result(double[] out, double[] lse) {
            this.out = out;
            this.lse = lse;
        }
    }

    private Reference() {}

    /**
     * Computes attention in float64.
     *
     * @param q [B, Hq, Lq, D]
     * @param k [B, Hkv, Lk, D]
     * @param v [B, Hkv, Lk, Dv]
     * @param b batch
     * @param hq query heads
     * @param hkv kv heads
     * @param lq query length
     * @param lk key length
     * @param d head dim
     * @param dv value dim
     * @param o options
     * @return out [B, Hq, Lq, Dv] and lse [B, Hq, Lq]
     */
    public static Result attention(float[] q, float[] k, float[] v, int b, int hq, int hkv, int lq, int lk, int d,
            int dv, Options o) {
        double[] out = new double[b * hq * lq * dv];
        double[] lse = new double[b * hq * lq];
        int group = hq / hkv;
        long qStart = o.queryStart != null ? o.queryStart : (long) lk - lq;
        double[] s = new double[lk];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < hq; h++) {
                int kh = h / group;
                for (int i = 0; i < lq; i++) {
                    long pos = qStart + i;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < lk; j++) {
                        long key = o.keyStart + j;
                        boolean visible = true;
                        if (o.causal && key > pos) {
                            visible = false;
                        }
                        if (o.windowRight >= 0 && key > pos + o.windowRight) {
                            visible = false;
                        }
                        if (o.windowLeft >= 0 && key < pos - o.windowLeft && key >= o.sinkTokens) {
                            visible = false;
                        }
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        int qo = ((bi * hq + h) * lq + i) * d;
                        int ko = ((bi * hkv + kh) * lk + j) * d;
                        for (int x = 0; x < d; x++) {
                            dot = r(o, dot + r(o, (double) q[qo + x] * k[ko + x]));
                        }
                        double sc = r(o, dot * r(o, o.scale));
                        if (o.softcap > 0) {
                            sc = r(o, o.softcap * r(o, Math.tanh(r(o, sc / o.softcap))));
                        }
                        if (o.alibi != null) {
                            sc = r(o, sc - r(o, o.alibi[h] * Math.abs((double) (pos - key))));
                        }
                        s[j] = sc;
                        max = Math.max(max, sc);
                    }
                    int row = (bi * hq + h) * lq + i;
                    if (max == Double.NEGATIVE_INFINITY) {
                        lse[row] = Double.NEGATIVE_INFINITY;
                        continue; // out stays 0
                    }
                    double sum = 0;
                    for (int j = 0; j < lk; j++) {
                        double p = r(o, Math.exp(r(o, s[j] - max)));
                        s[j] = p;
                        sum = r(o, sum + p);
                    }
                    lse[row] = r(o, max + r(o, Math.log(sum)));
                    for (int j = 0; j < lk; j++) {
                        if (s[j] == 0) {
                            continue;
                        }
                        int vo = ((bi * hkv + kh) * lk + j) * dv;
                        for (int x = 0; x < dv; x++) {
                            out[row * dv + x] = r(o, out[row * dv + x] + r(o, r(o, s[j] / sum) * v[vo + x]));
                        }
                    }
                }
            }
        }
        return new Result(out, lse);
    }

    /**
     * Attention of the low-precision run: {@link #attention} with every intermediate rounded to float32.
     *
     * @param q [B, Hq, Lq, D]
     * @param k [B, Hkv, Lk, D]
     * @param v [B, Hkv, Lk, Dv]
     * @param b batch
     * @param hq query heads
     * @param hkv kv heads
     * @param lq query length
     * @param lk key length
     * @param d head dim
     * @param dv value dim
     * @param o options (its float32 flag is ignored)
     * @return out and lse of the float32 run
     */
    public static Result attentionFloat32(float[] q, float[] k, float[] v, int b, int hq, int hkv, int lq, int lk,
            int d, int dv, Options o) {
        boolean saved = o.float32;
        o.float32 = true;
        try {
            return attention(q, k, v, b, hq, hkv, lq, lk, d, dv, o);
        } finally {
            o.float32 = saved;
        }
    }

    /**
     * The error budget of docs/SEMANTICS.md: {@code 2 * max|lowprec - ref| + 1e-5}.
     *
     * @param lowPrecision the low-precision run's values
     * @param reference the float64 reference
     * @return the allowed max abs error
     */
    public static double budget(double[] lowPrecision, double[] reference) {
        return 2 * maxAbsDiff(lowPrecision, reference) + 1e-5;
    }

    /**
     * The tolerance for two attention outputs of {@code type} compared with each other or with float64: an fp16
     * output keeps 11 significant bits, so two roundings of values near {@code magnitude} differ by up to 2^-10 of it
     * (one unit in the last place at the top of its binade: 0.0039 for values in [4, 8)). fp16: {@code 2e-3 * max(1,
     * magnitude)}; other types: {@code fp32Tol}.
     *
     * @param type the outputs' data type
     * @param fp32Tol the tolerance for float32 outputs
     * @param magnitude the largest |value| compared (see {@link #maxAbs})
     * @return the allowed max abs difference
     */
    public static double outputTolerance(DataType type, double fp32Tol, double magnitude) {
        return type == DataType.FLOAT16 ? 2e-3 * Math.max(1, magnitude) : fp32Tol;
    }

    /**
     * Returns the largest finite |value| (0 for none).
     *
     * @param values the values
     * @return max |value| over the finite ones
     */
    public static double maxAbs(double[] values) {
        double m = 0;
        for (double x : values) {
            if (Double.isFinite(x)) {
                m = Math.max(m, Math.abs(x));
            }
        }
        return m;
    }

    private static double r(Options o, double x) {
        return o.float32 ? (float) x : x;
    }

    /**
     * Returns fresh standard-normal values, never all zeros.
     *
     * @param rnd the random source
     * @param n the count
     * @return the values
     */
    public static float[] randn(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    /**
     * Rounds values through float16 as DJL stores them, so the reference sees the same inputs.
     *
     * @param manager a manager
     * @param x the values
     * @return x rounded to float16
     */
    public static float[] roundToHalf(NDManager manager, float[] x) {
        try (NDArray a = manager.create(x)) {
            return a.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray();
        }
    }

    /**
     * Permutes a flat bhsd array into bshd order.
     *
     * @param x [B, H, L, D]
     * @param b batch
     * @param h heads
     * @param l length
     * @param d dim
     * @return [B, L, H, D]
     */
    public static float[] bhsdToBshd(float[] x, int b, int h, int l, int d) {
        float[] y = new float[x.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int li = 0; li < l; li++) {
                    System.arraycopy(x, ((bi * h + hi) * l + li) * d, y, ((bi * l + li) * h + hi) * d, d);
                }
            }
        }
        return y;
    }

    /**
     * Returns an NDArray's values as a flat double array (in its own axis order).
     *
     * @param a the array
     * @return the values
     */
    public static double[] toDoubles(NDArray a) {
        float[] f = a.toType(DataType.FLOAT32, false).toFloatArray();
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    /**
     * Returns max |a - b| where -inf equals -inf; any NaN or an inf mismatch gives +inf.
     *
     * @param a values
     * @param b values
     * @return the max abs difference
     */
    public static double maxAbsDiff(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
                return Double.POSITIVE_INFINITY;
            }
            if (Double.isInfinite(a[i]) || Double.isInfinite(b[i])) {
                if (a[i] != b[i]) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    /**
     * Creates an NDArray from flat values.
     *
     * @param manager the manager
     * @param x values
     * @param type dtype
     * @param shape shape
     * @return the array
     */
    public static NDArray create(NDManager manager, float[] x, DataType type, long... shape) {
        NDArray a = manager.create(x, new Shape(shape));
        return type == DataType.FLOAT32 ? a : a.toType(type, false);
    }
}
