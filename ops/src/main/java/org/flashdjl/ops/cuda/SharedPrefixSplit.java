package org.flashdjl.ops.cuda;

/**
 * How {@link CudaSharedPrefixDecode} cuts the shared prefix into chunks (the flash kernel has no split-KV of its
 * own, so the chunks along the flash batch axis fill the GPU): {@code fullChunks} chunks of {@code chunk} keys, then
 * one shorter chunk of {@code tail} keys when {@code tail > 0}; each chunk's state is merged afterwards.
 *
 * @param prefixLen P
 * @param chunk keys per chunk (0 when P = 0)
 * @param fullChunks chunks of exactly {@code chunk} keys
 * @param tail keys of the last, shorter chunk (0 = none)
 */
public record SharedPrefixSplit(int prefixLen, int chunk, int fullChunks, int tail) {

    /** Prefix chunks are multiples of this many keys (whole key tiles of the flash kernels). */
    public static final int CHUNK_ALIGN = 128;

    /** The smallest chunk the planner makes: below it a split costs more than it gains. */
    public static final int MIN_CHUNK = 512;

    /** Query rows per flash CTA the planner assumes (the kernels' 64- or 128-row tiles: the larger). */
    public static final int PLAN_ROWS_PER_BLOCK = 128;

    /** The planner aims at about this many flash CTAs per SM (several waves hide the last wave's tail). */
    public static final int CTAS_PER_SM_TARGET = 4;

    /** The most prefix states (splits) the planner makes: the wide merge kernel's state table. */
    public static final int MAX_SPLITS = 1024;

    /**
     * Checks the invariants.
     *
     * @param prefixLen P
     * @param chunk keys per chunk
     * @param fullChunks full chunks
     * @param tail keys of the shorter last chunk
     */
    public SharedPrefixSplit {
        if (prefixLen < 0 || chunk < 0 || fullChunks < 0 || tail < 0 || (prefixLen > 0 && chunk < 1)
                || tail >= Math.max(1, chunk) || (long) fullChunks * chunk + tail != prefixLen) {
            throw new IllegalArgumentException("inconsistent split plan: P=" + prefixLen + " chunk=" + chunk
                    + " fullChunks=" + fullChunks + " tail=" + tail + " (need fullChunks * chunk + tail = P,"
                    + " 0 <= tail < chunk)");
        }
    }

    /**
     * Plans the split: enough chunks that {@code ceil(B / rowsPerBlock) * Hq * chunks} flash CTAs give about
     * {@link #CTAS_PER_SM_TARGET} per SM, chunks a multiple of {@link #CHUNK_ALIGN} keys and at least
     * {@link #MIN_CHUNK} (unless the whole prefix is shorter), at most {@link #MAX_SPLITS} states.
     *
     * @param prefixLen P {@code >= 0}
     * @param batch the query rows of one head's flash call: B, or B x Hq/Hkv when GQA-packed
     * @param queryHeads the heads of the flash grid: Hq, or Hkv when GQA-packed
     * @param smCount streaming multiprocessors
     * @param rowsPerBlock query rows per flash CTA ({@link #PLAN_ROWS_PER_BLOCK})
     * @return the split
     */
    public static SharedPrefixSplit plan(int prefixLen, int batch, int queryHeads, int smCount, int rowsPerBlock) {
        if (prefixLen < 0 || batch < 0 || queryHeads < 1 || smCount < 1 || rowsPerBlock < 1) {
            throw new IllegalArgumentException("the prefix split needs P >= 0, B >= 0, Hq, smCount, rowsPerBlock >= 1;"
                    + " got P=" + prefixLen + " B=" + batch + " Hq=" + queryHeads + " SMs=" + smCount + " rows="
                    + rowsPerBlock);
        }
        if (prefixLen == 0) {
            return new SharedPrefixSplit(0, 0, 0, 0);
        }
        long units = (long) Math.max(1, (batch + rowsPerBlock - 1) / rowsPerBlock) * queryHeads;
        long want = Math.max(1, ((long) CTAS_PER_SM_TARGET * smCount + units - 1) / units);
        long chunk = roundUp((prefixLen + want - 1) / want, CHUNK_ALIGN);
        chunk = Math.max(chunk, Math.min(MIN_CHUNK, roundUp(prefixLen, CHUNK_ALIGN)));
        chunk = Math.max(chunk, roundUp((prefixLen + MAX_SPLITS - 1) / MAX_SPLITS, CHUNK_ALIGN));
        return bySize(prefixLen, (int) Math.min(chunk, prefixLen));
    }

    /**
     * Cuts the prefix into chunks of a given size (tests, benchmarks): {@code P / chunk} full chunks and the rest.
     *
     * @param prefixLen P {@code >= 0}
     * @param chunk keys per chunk {@code >= 1}
     * @return the split
     */
    public static SharedPrefixSplit bySize(int prefixLen, int chunk) {
        if (prefixLen < 0 || chunk < 1) {
            throw new IllegalArgumentException("bySize needs P >= 0 and chunk >= 1, got P=" + prefixLen + " chunk="
                    + chunk);
        }
        if (prefixLen == 0) {
            return new SharedPrefixSplit(0, 0, 0, 0);
        }
        int c = Math.min(chunk, prefixLen);
        int full = prefixLen / c;
        int tail = prefixLen - full * c;
        if (full + (tail > 0 ? 1 : 0) > MAX_SPLITS) {
            throw new IllegalArgumentException("chunk " + chunk + " cuts P=" + prefixLen + " into more than "
                    + MAX_SPLITS + " states; use chunk >= " + (prefixLen + MAX_SPLITS - 1) / MAX_SPLITS);
        }
        return new SharedPrefixSplit(prefixLen, c, full, tail);
    }

    /**
     * Returns the number of prefix states (flash outputs) the merge combines.
     *
     * @return fullChunks, plus one with a tail
     */
    public int states() {
        return fullChunks + (tail > 0 ? 1 : 0);
    }

    private static long roundUp(long x, long m) {
        return (x + m - 1) / m * m;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return prefixLen == 0 ? "no prefix" : fullChunks + " x " + chunk + (tail > 0 ? " + " + tail : "") + " keys";
    }
}
