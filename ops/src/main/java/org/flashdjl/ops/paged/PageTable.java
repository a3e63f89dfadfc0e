package org.flashdjl.ops.paged;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;

import java.util.Arrays;

/**
 * Which pages of a paged K/V pool hold each sequence of a batch, in the two interchangeable forms of docs/SEMANTICS.md:
 *
 * <ul>
 *   <li><b>CSR</b> (FlashInfer): {@code indptr} [B + 1], {@code indices} [indptr[B]] and {@code lastPageLen} [B];
 *       sequence {@code b} owns pages {@code indices[indptr[b] .. indptr[b+1])} and holds
 *       {@code (pages - 1) * pageSize + lastPageLen[b]} tokens, {@code 1 <= lastPageLen[b] <= pageSize}; a sequence
 *       with no page holds 0 tokens and has {@code lastPageLen[b] = 0};
 *   <li><b>block table</b> (vLLM): {@code blockTable} [B, maxPages] and {@code seqLens} [B]; row {@code b} lists
 *       the sequence's pages in order, entries past {@code ceil(seqLens[b] / pageSize)} are padding (0 on export)
 *       and are never read.
 * </ul>
 *
 * <p>Token {@code j} of sequence {@code b} lives in page {@code page(b, j / pageSize)} at row
 * {@code j % pageSize}, i.e. at slot {@code page * pageSize + j % pageSize} of the pool viewed as
 * [numPages * pageSize, Hkv, D]. Instances are immutable host-side tables, validated on construction (the messages
 * name the argument and the allowed values); {@link #toCsrArrays} and {@link #toBlockTableArrays} export int32
 * NDArrays for a device kernel.
 */
public final class PageTable {

    /** The largest page size any paged operator accepts. */
    public static final int MAX_PAGE_SIZE = 256;

    private final int pageSize;
    private final int[] indptr; // [B + 1]
    private final int[] indices; // [indptr[B]]
    private final int[] lastPageLen; // [B]
    private final int[] seqLens; // [B]
    private final int maxPageIndex; // largest page referenced, -1 when none

    private PageTable(int pageSize, int[] indptr, int[] indices, int[] lastPageLen) {
        this.pageSize = pageSize;
        this.indptr = indptr;
        this.indices = indices;
        this.lastPageLen = lastPageLen;
        int b = lastPageLen.length;
        this.seqLens = new int[b];
        for (int i = 0; i < b; i++) {
            int pages = indptr[i + 1] - indptr[i];
            seqLens[i] = pages == 0 ? 0 : (pages - 1) * pageSize + lastPageLen[i];
        }
        int max = -1;
        for (int p : indices) {
            max = Math.max(max, p);
        }
        this.maxPageIndex = max;
    }

    /**
     * Checks a page size: any value in {@code 1..}{@link #MAX_PAGE_SIZE}.
     *
     * @param name the argument name used in the message
     * @param pageSize the page size
     * @throws IllegalArgumentException naming the allowed values
     */
    public static void checkPageSize(String name, int pageSize) {
        if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
            throw new IllegalArgumentException(name + " must be in 1.." + MAX_PAGE_SIZE
                    + " (any size, powers of two or not), got " + pageSize);
        }
    }

    /**
     * Builds a table from FlashInfer's CSR form.
     *
     * @param pageSize tokens per page, 1..256
     * @param indptr [B + 1] page offsets: starts at 0, non-decreasing, ends at {@code indices.length}
     * @param indices [indptr[B]] page indices, each in {@code 0..numPages-1}
     * @param lastPageLen [B] tokens in each sequence's last page: 1..pageSize, or 0 for a sequence with no page
     * @param numPages pages in the pool the table points into ({@code >= 1}), or -1 to skip the range check here
     *     (it runs again when the table meets a pool)
     * @return the table
     * @throws IllegalArgumentException naming the bad argument and the allowed values
     */
    public static PageTable fromCsr(int pageSize, int[] indptr, int[] indices, int[] lastPageLen, int numPages) {
        checkPageSize("pageSize", pageSize);
        if (indptr == null || indptr.length < 2) {
            throw new IllegalArgumentException("indptr must have B + 1 >= 2 entries (batch >= 1), got "
                    + (indptr == null ? "null" : Checks.list(indptr)));
        }
        int b = indptr.length - 1;
        if (lastPageLen == null || lastPageLen.length != b) {
            throw new IllegalArgumentException("lastPageLen must have one entry per sequence (" + b + "), got "
                    + (lastPageLen == null ? "null" : lastPageLen.length + " entries"));
        }
        if (indptr[0] != 0) {
            throw new IllegalArgumentException("indptr must start at 0, got " + Checks.list(indptr));
        }
        for (int i = 1; i <= b; i++) {
            if (indptr[i] < indptr[i - 1]) {
                throw new IllegalArgumentException("indptr must be non-decreasing (monotone), got "
                        + Checks.list(indptr) + " (decreases at index " + i + ")");
            }
        }
        if (indices == null || indptr[b] != indices.length) {
            throw new IllegalArgumentException("indptr must end at the number of page indices ("
                    + (indices == null ? "null" : indices.length) + "), got indptr[" + b + "] = " + indptr[b]);
        }
        checkPageIndices("indices", indices, numPages);
        for (int i = 0; i < b; i++) {
            boolean empty = indptr[i + 1] == indptr[i];
            int len = lastPageLen[i];
            if (empty ? len != 0 : len < 1 || len > pageSize) {
                throw new IllegalArgumentException("lastPageLen[" + i + "] = " + len + " is outside "
                        + (empty ? "0..0 (sequence " + i + " has no page)" : "1.." + pageSize + " (pageSize)"));
            }
        }
        return new PageTable(pageSize, indptr.clone(), indices.clone(), lastPageLen.clone());
    }

    /**
     * Builds a table from the CSR form held in int32 NDArrays (copied to the host once).
     *
     * @param pageSize tokens per page, 1..256
     * @param indptr int32 [B + 1]
     * @param indices int32 [indptr[B]]
     * @param lastPageLen int32 [B]
     * @param numPages pages in the pool, or -1 to check later
     * @return the table
     */
    public static PageTable fromCsr(int pageSize, NDArray indptr, NDArray indices, NDArray lastPageLen,
            int numPages) {
        return fromCsr(pageSize, ints("indptr", indptr), ints("indices", indices),
                ints("lastPageLen", lastPageLen), numPages);
    }

    /**
     * Builds a table from vLLM's block-table form.
     *
     * @param pageSize tokens per page, 1..256
     * @param blockTable [B][maxPages] page indices; the first {@code ceil(seqLens[b] / pageSize)} of row b are
     *     used and must be in {@code 0..numPages-1}, the rest is padding and ignored
     * @param seqLens [B] tokens per sequence, {@code 0..maxPages * pageSize}
     * @param numPages pages in the pool, or -1 to check later
     * @return the table
     * @throws IllegalArgumentException naming the bad argument and the allowed values
     */
    public static PageTable fromBlockTable(int pageSize, int[][] blockTable, int[] seqLens, int numPages) {
        checkPageSize("pageSize", pageSize);
        if (blockTable == null || blockTable.length == 0) {
            throw new IllegalArgumentException("blockTable must have one row per sequence (batch >= 1)");
        }
        int b = blockTable.length;
        if (seqLens == null || seqLens.length != b) {
            throw new IllegalArgumentException("seqLens must have one entry per blockTable row (" + b + "), got "
                    + (seqLens == null ? "null" : seqLens.length + " entries"));
        }
        int[] indptr = new int[b + 1];
        int[] last = new int[b];
        for (int i = 0; i < b; i++) {
            int width = blockTable[i].length;
            if (seqLens[i] < 0 || (long) seqLens[i] > (long) width * pageSize) {
                throw new IllegalArgumentException("seqLens[" + i + "] = " + seqLens[i] + " is outside 0.."
                        + (long) width * pageSize + " (" + width + " pages of " + pageSize + " tokens in row " + i
                        + ")");
            }
            int pages = (seqLens[i] + pageSize - 1) / pageSize;
            indptr[i + 1] = indptr[i] + pages;
            last[i] = pages == 0 ? 0 : seqLens[i] - (pages - 1) * pageSize;
        }
        int[] indices = new int[indptr[b]];
        for (int i = 0; i < b; i++) {
            System.arraycopy(blockTable[i], 0, indices, indptr[i], indptr[i + 1] - indptr[i]);
        }
        checkPageIndices("blockTable", indices, numPages);
        return new PageTable(pageSize, indptr, indices, last);
    }

    /**
     * Builds a table from the block-table form held in int32 NDArrays (copied to the host once).
     *
     * @param pageSize tokens per page, 1..256
     * @param blockTable int32 [B, maxPages]
     * @param seqLens int32 [B]
     * @param numPages pages in the pool, or -1 to check later
     * @return the table
     */
    public static PageTable fromBlockTable(int pageSize, NDArray blockTable, NDArray seqLens, int numPages) {
        Checks.checkRank("blockTable", blockTable, 2, "[batch, maxPages]");
        int[] flat = ints("blockTable", blockTable);
        int b = (int) blockTable.getShape().get(0);
        int width = (int) blockTable.getShape().get(1);
        int[][] rows = new int[b][];
        for (int i = 0; i < b; i++) {
            rows[i] = Arrays.copyOfRange(flat, i * width, (i + 1) * width);
        }
        return fromBlockTable(pageSize, rows, ints("seqLens", seqLens), numPages);
    }

    private static void checkPageIndices(String name, int[] pages, int numPages) {
        if (numPages == 0 || numPages < -1) {
            throw new IllegalArgumentException("numPages must be >= 1 (an empty cache has no page to point at), or"
                    + " -1 to skip the check; got " + numPages);
        }
        for (int i = 0; i < pages.length; i++) {
            if (pages[i] < 0 || (numPages > 0 && pages[i] >= numPages)) {
                throw new IllegalArgumentException(name + " entry " + i + " is page " + pages[i]
                        + ", out of range: allowed 0.." + (numPages > 0 ? numPages - 1 : "numPages-1"));
            }
        }
    }

    private static int[] ints(String name, NDArray array) {
        if (array.getDataType() != DataType.INT32) {
            throw new IllegalArgumentException(name + " must be int32, got " + array.getDataType());
        }
        if (!name.equals("blockTable")) {
            Checks.checkRank(name, array, 1, "[n]");
        }
        return array.toIntArray();
    }

    /**
     * Checks that every referenced page exists in a pool of {@code numPages} pages.
     *
     * @param numPages pages in the pool
     * @throws IllegalArgumentException naming the first page out of range
     */
    public void checkFits(long numPages) {
        if (maxPageIndex >= numPages) {
            throw new IllegalArgumentException("page table references page " + maxPageIndex + " but the cache has "
                    + numPages + " pages: allowed page indices 0.." + (numPages - 1));
        }
    }

    /**
     * Returns the page size.
     *
     * @return tokens per page
     */
    public int getPageSize() {
        return pageSize;
    }

    /**
     * Returns the number of sequences.
     *
     * @return B
     */
    public int getBatchSize() {
        return lastPageLen.length;
    }

    /**
     * Returns the token count of a sequence.
     *
     * @param b the sequence's row
     * @return its length
     */
    public int getSeqLen(int b) {
        return seqLens[b];
    }

    /**
     * Returns every sequence's token count.
     *
     * @return a copy of seqLens [B]
     */
    public int[] getSeqLens() {
        return seqLens.clone();
    }

    /**
     * Returns how many pages a sequence owns.
     *
     * @param b the sequence's row
     * @return {@code indptr[b + 1] - indptr[b]}
     */
    public int getNumPages(int b) {
        return indptr[b + 1] - indptr[b];
    }

    /**
     * Returns the {@code i}-th page of a sequence.
     *
     * @param b the sequence's row
     * @param i the page's position in the sequence, {@code 0..getNumPages(b)-1}
     * @return the page index in the pool
     */
    public int getPage(int b, int i) {
        if (i < 0 || i >= getNumPages(b)) {
            throw new IndexOutOfBoundsException("sequence " + b + " has " + getNumPages(b) + " pages, asked for " + i);
        }
        return indices[indptr[b] + i];
    }

    /**
     * Returns the pool slot of token {@code j} of sequence {@code b}: {@code page * pageSize + j % pageSize}.
     *
     * @param b the sequence's row
     * @param j the token, {@code 0..getSeqLen(b)-1}
     * @return the slot in the pool viewed as [numPages * pageSize, Hkv, D]
     */
    public long getSlot(int b, int j) {
        if (j < 0 || j >= seqLens[b]) {
            throw new IndexOutOfBoundsException("sequence " + b + " has " + seqLens[b] + " tokens, asked for " + j);
        }
        return (long) indices[indptr[b] + j / pageSize] * pageSize + j % pageSize;
    }

    /**
     * Returns the largest page index referenced.
     *
     * @return the index, or -1 if no sequence owns a page
     */
    public int getMaxPageIndex() {
        return maxPageIndex;
    }

    /**
     * Returns the widest row of the block-table form.
     *
     * @return {@code max_b getNumPages(b)}
     */
    public int getMaxPagesPerSequence() {
        int max = 0;
        for (int b = 0; b < getBatchSize(); b++) {
            max = Math.max(max, getNumPages(b));
        }
        return max;
    }

    /**
     * Returns the CSR page offsets.
     *
     * @return a copy of indptr [B + 1]
     */
    public int[] getIndptr() {
        return indptr.clone();
    }

    /**
     * Returns the CSR page indices.
     *
     * @return a copy of indices [indptr[B]]
     */
    public int[] getIndices() {
        return indices.clone();
    }

    /**
     * Returns the CSR last-page lengths.
     *
     * @return a copy of lastPageLen [B]
     */
    public int[] getLastPageLen() {
        return lastPageLen.clone();
    }

    /**
     * Returns the block-table form, padded with page 0.
     *
     * @param width the row width, at least {@link #getMaxPagesPerSequence()}
     * @return [B][width] page indices
     */
    public int[][] getBlockTable(int width) {
        if (width < getMaxPagesPerSequence()) {
            throw new IllegalArgumentException("block table width " + width + " is below the longest sequence's "
                    + getMaxPagesPerSequence() + " pages");
        }
        int[][] rows = new int[getBatchSize()][width];
        for (int b = 0; b < rows.length; b++) {
            System.arraycopy(indices, indptr[b], rows[b], 0, getNumPages(b));
        }
        return rows;
    }

    /**
     * Exports the CSR form as int32 NDArrays.
     *
     * @param manager the manager that owns (and places) the arrays
     * @return indptr [B + 1], indices [indptr[B]], lastPageLen [B]
     */
    public NDList toCsrArrays(NDManager manager) {
        return new NDList(manager.create(indptr), manager.create(indices, new Shape(indices.length)),
                manager.create(lastPageLen));
    }

    /**
     * Exports the block-table form as int32 NDArrays, rows padded with page 0 to the longest sequence.
     *
     * @param manager the manager that owns (and places) the arrays
     * @return blockTable [B, maxPages] and seqLens [B]
     */
    public NDList toBlockTableArrays(NDManager manager) {
        int width = Math.max(1, getMaxPagesPerSequence());
        int[][] rows = getBlockTable(width);
        int[] flat = new int[rows.length * width];
        for (int b = 0; b < rows.length; b++) {
            System.arraycopy(rows[b], 0, flat, b * width, width);
        }
        return new NDList(manager.create(flat, new Shape(rows.length, width)), manager.create(seqLens));
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "PageTable{pageSize=" + pageSize + ", seqLens=" + Arrays.toString(seqLens) + ", indptr="
                + Arrays.toString(indptr) + ", indices=" + Arrays.toString(indices) + ", lastPageLen="
                + Arrays.toString(lastPageLen) + "}";
    }
}
