package org.flashdjl.kvcache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The plain model of a stream the cache is checked against: a list of tokens (one {@code double[]}
 * per token and per K/V, laid out [outer, inner] around the sequence dimension), the expected
 * positions the cache holds, and the expected cache contents built from them with index
 * arithmetic only (no DJL ops).
 */
final class StreamModel {

    final long[] keyDims; // cache key shape, [..., total, ...] along seqDim
    final long[] valueDims; // cache value shape
    final int seqDim;
    final int chunk;
    final int window;
    final int sink;
    final int total;
    final List<double[]> keys = new ArrayList<>(); // per stream token: [outer * innerK]
    final List<double[]> values = new ArrayList<>(); // per stream token: [outer * innerV]

    StreamModel(long[] keyDims, long[] valueDims, int seqDim, int chunk, int window, int sink) {
        this.keyDims = keyDims.clone();
        this.valueDims = valueDims.clone();
        this.seqDim = seqDim;
        this.chunk = chunk;
        this.window = window;
        this.sink = sink;
        this.total = sink + window;
        this.keyDims[seqDim] = total;
        this.valueDims[seqDim] = total;
    }

    /** Number of tokens streamed so far. */
    int length() {
        return keys.size();
    }

    /** Expected positions: prefix while filling, sinks + last window in steady state. */
    long[] positions() {
        int n = length();
        if (n <= total) {
            long[] p = new long[n];
            for (int i = 0; i < n; i++) {
                p[i] = i;
            }
            return p;
        }
        long[] p = new long[total];
        for (int i = 0; i < sink; i++) {
            p[i] = i;
        }
        for (int w = 0; w < window; w++) {
            p[sink + w] = n - window + w;
        }
        return p;
    }

    /** Records chunk {@code chunkIdx} (appended or overwritten) from the given flat data. */
    void put(long chunkIdx, double[] kData, double[] vData) {
        int start = Math.toIntExact(chunkIdx * chunk);
        if (start > length()) {
            throw new AssertionError("model: chunk " + chunkIdx + " skips ahead");
        }
        for (int t = 0; t < chunk; t++) {
            double[] kt = token(kData, keyDims, t);
            double[] vt = token(vData, valueDims, t);
            if (start + t < length()) {
                keys.set(start + t, kt);
                values.set(start + t, vt);
            } else {
                keys.add(kt);
                values.add(vt);
            }
        }
    }

    private double[] token(double[] data, long[] dims, int t) {
        int outer = outer(dims);
        int inner = inner(dims);
        double[] out = new double[outer * inner];
        for (int o = 0; o < outer; o++) {
            System.arraycopy(data, (o * chunk + t) * inner, out, o * inner, inner);
        }
        return out;
    }

    double[] expectedKeys() {
        return expected(keys, keyDims);
    }

    double[] expectedValues() {
        return expected(values, valueDims);
    }

    private double[] expected(List<double[]> tokens, long[] dims) {
        long[] pos = positions();
        int len = pos.length;
        int outer = outer(dims);
        int inner = inner(dims);
        double[] out = new double[outer * len * inner];
        for (int s = 0; s < len; s++) {
            double[] tok = tokens.get((int) pos[s]);
            for (int o = 0; o < outer; o++) {
                System.arraycopy(tok, o * inner, out, (o * len + s) * inner, inner);
            }
        }
        return out;
    }

    /** The shape of the expected cached keys. */
    Shape expectedKeyShape() {
        long[] d = keyDims.clone();
        d[seqDim] = positions().length;
        return new Shape(d);
    }

    int outer(long[] dims) {
        int p = 1;
        for (int d = 0; d < seqDim; d++) {
            p *= (int) dims[d];
        }
        return p;
    }

    int inner(long[] dims) {
        int p = 1;
        for (int d = seqDim + 1; d < dims.length; d++) {
            p *= (int) dims[d];
        }
        return p;
    }

    /** Chunk shape for the given cache dims. */
    Shape chunkShape(long[] dims) {
        long[] d = dims.clone();
        d[seqDim] = chunk;
        return new Shape(d);
    }

    /** A fresh random chunk array of the given shape and dtype (never zeros). */
    static NDArray randomChunk(NDManager m, Shape shape, DataType dt, Random rnd) {
        double[] data = new double[Math.toIntExact(shape.size())];
        for (int i = 0; i < data.length; i++) {
            data[i] = rnd.nextGaussian() + 0.01;
        }
        NDArray d = m.create(data, shape);
        if (dt == DataType.FLOAT64) {
            return d;
        }
        NDArray out = d.toType(dt, false);
        d.close();
        return out;
    }

    /** Reads any float array (view or not) as float64, without leaving a temporary behind. */
    static double[] read(NDArray a) {
        if (a.getDataType() == DataType.FLOAT64) {
            return a.toDoubleArray();
        }
        try (NDArray d = a.toType(DataType.FLOAT64, true)) {
            return d.toDoubleArray();
        }
    }
}
