package org.flashdjl.ops.paged;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.testing.Reference;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Test helper: page pools holding random per-sequence K/V at shuffled pages, every other slot (unused pages and
 * the tail of each last page) NaN, plus a float64 reference per sequence and the option sets of the sweeps.
 */
public final class PagedFixture {

    /** Option sets the paged sweeps cycle through. */
    public static final String[] OPTIONS = {
        "none", "causal", "window", "causal+window+sinks", "alibi", "softcap+causal", "all", "scale",
        "window-right-only"
    };

    public final int pageSize;
    public final int kvHeads;
    public final int headDim;
    public final int numPages;
    public final int[] seqLens; // [B]
    public final float[][] keys; // per sequence [Lk_b, Hkv, D]
    public final float[][] values; // per sequence [Lk_b, Hkv, D]
    public final NDArray kPages; // [numPages, pageSize, Hkv, D]
    public final NDArray vPages; // [numPages, pageSize, Hkv, D]
    public final PageTable table;

    private PagedFixture(NDManager m, Random rnd, int pageSize, int kvHeads, int headDim, int[] seqLens,
            int extraPages, DataType type, float[][] givenKeys, float[][] givenValues) {
        this.pageSize = pageSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.seqLens = seqLens.clone();
        int b = seqLens.length;
        int[] indptr = new int[b + 1];
        for (int i = 0; i < b; i++) {
            indptr[i + 1] = indptr[i] + (seqLens[i] + pageSize - 1) / pageSize;
        }
        this.numPages = indptr[b] + extraPages;
        List<Integer> perm = new ArrayList<>();
        for (int p = 0; p < numPages; p++) {
            perm.add(p);
        }
        Collections.shuffle(perm, rnd);
        int[] indices = new int[indptr[b]];
        for (int i = 0; i < indices.length; i++) {
            indices[i] = perm.get(i);
        }
        int[] last = new int[b];
        for (int i = 0; i < b; i++) {
            int pages = indptr[i + 1] - indptr[i];
            last[i] = pages == 0 ? 0 : seqLens[i] - (pages - 1) * pageSize;
        }
        this.table = PageTable.fromCsr(pageSize, indptr, indices, last, numPages);
        int row = kvHeads * headDim;
        float[] kPool = new float[numPages * pageSize * row];
        float[] vPool = new float[kPool.length];
        Arrays.fill(kPool, Float.NaN);
        Arrays.fill(vPool, Float.NaN);
        keys = new float[b][];
        values = new float[b][];
        for (int i = 0; i < b; i++) {
            keys[i] = givenKeys != null ? givenKeys[i] : randn(m, rnd, seqLens[i] * row, type);
            values[i] = givenValues != null ? givenValues[i] : randn(m, rnd, seqLens[i] * row, type);
            for (int j = 0; j < seqLens[i]; j++) {
                long slot = table.getSlot(i, j);
                System.arraycopy(keys[i], j * row, kPool, (int) slot * row, row);
                System.arraycopy(values[i], j * row, vPool, (int) slot * row, row);
            }
        }
        Shape shape = new Shape(numPages, pageSize, kvHeads, headDim);
        this.kPages = Reference.create(m, kPool, type, shape.getShape());
        this.vPages = Reference.create(m, vPool, type, shape.getShape());
    }

    /**
     * Builds pools for sequences of the given lengths.
     *
     * @param m the manager
     * @param rnd random source
     * @param pageSize tokens per page
     * @param kvHeads Hkv
     * @param headDim D
     * @param seqLens tokens per sequence
     * @param extraPages unused (NaN) pages on top of the needed ones
     * @param type pool dtype
     * @return the fixture
     */
    public static PagedFixture create(NDManager m, Random rnd, int pageSize, int kvHeads, int headDim,
            int[] seqLens, int extraPages, DataType type) {
        return new PagedFixture(m, rnd, pageSize, kvHeads, headDim, seqLens, extraPages, type, null, null);
    }

    /**
     * Builds pools holding given per-sequence K/V.
     *
     * @param m the manager
     * @param rnd random source (page shuffle)
     * @param pageSize tokens per page
     * @param kvHeads Hkv
     * @param headDim D
     * @param keys per sequence [Lk_b, Hkv, D]
     * @param values per sequence [Lk_b, Hkv, D]
     * @param extraPages unused (NaN) pages on top of the needed ones
     * @param type pool dtype
     * @return the fixture
     */
    public static PagedFixture of(NDManager m, Random rnd, int pageSize, int kvHeads, int headDim, float[][] keys,
            float[][] values, int extraPages, DataType type) {
        int[] lens = new int[keys.length];
        for (int i = 0; i < keys.length; i++) {
            lens[i] = keys[i].length / (kvHeads * headDim);
        }
        return new PagedFixture(m, rnd, pageSize, kvHeads, headDim, lens, extraPages, type, keys, values);
    }

    /**
     * Random normal values, rounded through float16 when the dtype is float16.
     *
     * @param m manager
     * @param rnd random source
     * @param n count
     * @param type dtype
     * @return the values
     */
    public static float[] randn(NDManager m, Random rnd, int n, DataType type) {
        float[] x = Reference.randn(rnd, n);
        return type == DataType.FLOAT16 && n > 0 ? Reference.roundToHalf(m, x) : x;
    }

    /**
     * Permutes [L, H, D] to [H, L, D].
     *
     * @param x values
     * @param l length
     * @param h heads
     * @param d dim
     * @return [H, L, D]
     */
    public static float[] lhdToHld(float[] x, int l, int h, int d) {
        float[] y = new float[x.length];
        for (int i = 0; i < l; i++) {
            for (int hi = 0; hi < h; hi++) {
                System.arraycopy(x, (i * h + hi) * d, y, (hi * l + i) * d, d);
            }
        }
        return y;
    }

    /**
     * Float64 reference of one sequence: queries [Lq, Hq, D] at positions {@code keyOffset + Lk - Lq + i} over
     * keys [Lk, Hkv, D] at {@code keyOffset + j}.
     *
     * @param q queries [Lq, Hq, D]
     * @param k keys [Lk, Hkv, D]
     * @param v values [Lk, Hkv, D]
     * @param lq Lq
     * @param lk Lk
     * @param hq Hq
     * @param hkv Hkv
     * @param d D
     * @param ro options (queryStart / keyStart are set here)
     * @param keyOffset global index of key 0
     * @return out as [Lq, Hq, D] and lse as [Lq, Hq]
     */
    public static double[][] reference(float[] q, float[] k, float[] v, int lq, int lk, int hq, int hkv, int d,
            Reference.Options ro, long keyOffset) {
        ro.queryStart = keyOffset + lk - lq;
        ro.keyStart = keyOffset;
        Reference.Result r = Reference.attention(lhdToHld(q, lq, hq, d), lhdToHld(k, lk, hkv, d),
                lhdToHld(v, lk, hkv, d), 1, hq, hkv, lq, lk, d, d, ro);
        double[] out = new double[lq * hq * d];
        double[] lse = new double[lq * hq];
        for (int h = 0; h < hq; h++) {
            for (int i = 0; i < lq; i++) {
                lse[i * hq + h] = r.lse[h * lq + i];
                System.arraycopy(r.out, (h * lq + i) * d, out, (i * hq + h) * d, d);
            }
        }
        return new double[][] {out, lse};
    }
}
