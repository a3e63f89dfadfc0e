package org.flashdjl.kvcache.paged;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.paged.PageTable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The cache's bookkeeping: builder errors, append / reserve / write, page tables in both forms, fork with
 * copy-on-write, free, poisoning, and that every rejected call leaves allocator, sequences and pools unchanged.
 */
class PagedKvCacheTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** Everything observable about a cache, pool contents included. */
    record Snapshot(long[] ids, int[] lengths, List<int[]> pages, int[] refCounts, int free, List<float[]> pools) {
        static Snapshot of(PagedKvCache c) {
            long[] ids = c.getSequenceIds();
            int[] lengths = new int[ids.length];
            List<int[]> pages = new ArrayList<>();
            for (int i = 0; i < ids.length; i++) {
                lengths[i] = c.getSequenceLength(ids[i]);
                pages.add(c.getSequencePages(ids[i]));
            }
            int[] refs = new int[c.getNumPages()];
            for (int p = 0; p < refs.length; p++) {
                refs[p] = c.getRefCount(p);
            }
            List<float[]> pools = new ArrayList<>();
            for (int l = 0; l < c.getNumLayers(); l++) {
                pools.add(c.getKeyPages(l).toType(DataType.FLOAT32, false).toFloatArray());
                pools.add(c.getValuePages(l).toType(DataType.FLOAT32, false).toFloatArray());
            }
            return new Snapshot(ids, lengths, pages, refs, c.getFreePageCount(), pools);
        }

        void assertSame(Snapshot o, String what) {
            assertArrayEquals(ids, o.ids, what + ": sequence ids");
            assertArrayEquals(lengths, o.lengths, what + ": lengths");
            for (int i = 0; i < pages.size(); i++) {
                assertArrayEquals(pages.get(i), o.pages.get(i), what + ": pages of sequence " + ids[i]);
            }
            assertArrayEquals(refCounts, o.refCounts, what + ": reference counts");
            assertEquals(free, o.free, what + ": free pages");
            for (int i = 0; i < pools.size(); i++) {
                assertArrayEquals(pools.get(i), o.pools.get(i), what + ": pool contents " + i);
            }
        }
    }

    static PagedKvCache cache(int numPages, int pageSize, int layers) {
        return PagedKvCache.builder().setNumPages(numPages).setPageSize(pageSize).setKvHeads(2).setHeadDim(4)
                .optNumLayers(layers).optPoisonFreedPages(true).build();
    }

    static NDArray kv(NDManager m, int n) {
        return m.randomNormal(new Shape(n, 2, 4));
    }

    static void assertRejected(Class<? extends Throwable> type, PagedKvCache c, Executable call, String... parts) {
        Snapshot before = Snapshot.of(c);
        Throwable e = assertThrows(type, call);
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should contain '" + part
                    + "'");
        }
        before.assertSame(Snapshot.of(c), "after rejected call (" + e.getMessage() + ")");
    }

    @Test
    void builderErrorsNameTheArgument() {
        for (int size : new int[] {0, 257}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PagedKvCache.builder().setNumPages(4).setPageSize(size).setKvHeads(1).setHeadDim(8).build());
            assertTrue(e.getMessage().contains("pageSize must be in 1..256"), e.getMessage());
        }
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> PagedKvCache.builder().setNumPages(0).setPageSize(16).setKvHeads(1).setHeadDim(8).build());
        assertTrue(empty.getMessage().contains("empty cache"), empty.getMessage());
        IllegalArgumentException bf16 = assertThrows(IllegalArgumentException.class,
                () -> PagedKvCache.builder().setNumPages(4).setPageSize(16).setKvHeads(1).setHeadDim(8)
                        .optDataType(DataType.BFLOAT16).build());
        assertTrue(bf16.getMessage().contains("bfloat16"), bf16.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> PagedKvCache.builder().setNumPages(4).setPageSize(16).setKvHeads(1).setHeadDim(8)
                        .optDataType(DataType.INT32).build());
        IllegalArgumentException dim = assertThrows(IllegalArgumentException.class,
                () -> PagedKvCache.builder().setNumPages(4).setPageSize(16).setKvHeads(1).build());
        assertTrue(dim.getMessage().contains("headDim"), dim.getMessage());
        for (int size : new int[] {1, 3, 7, 100, 256}) {
            try (PagedKvCache c = cache(2, size, 1)) {
                assertEquals(new Shape(2, size, 2, 4), c.getKeyPages(0).getShape());
                assertTrue(Float.isNaN(c.getKeyPages(0).sum().getFloat()), "poisoned pools start as NaN");
            }
        }
    }

    @Test
    void appendGrowsSequencesAndExportsBothTableForms() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(8, 4, 1)) {
            long a = c.addSequence();
            long b = c.addSequence();
            NDArray ka = kv(m, 6);
            NDArray va = kv(m, 6);
            c.append(a, ka, va);
            NDArray kb = kv(m, 1);
            c.append(b, kb, kv(m, 1));
            assertEquals(6, c.getSequenceLength(a));
            assertEquals(1, c.getSequenceLength(b));
            assertEquals(3, c.getUsedPageCount());
            assertEquals(5, c.getFreePageCount());
            PageTable t = c.pageTable(a, b);
            assertArrayEquals(new int[] {0, 2, 3}, t.getIndptr());
            assertArrayEquals(new int[] {2, 1}, t.getLastPageLen());
            assertArrayEquals(new int[] {6, 1}, t.getSeqLens());
            NDList bt = c.exportBlockTable(m, a, b);
            assertEquals(new Shape(2, 2), bt.get(0).getShape());
            assertEquals(DataType.INT32, bt.get(0).getDataType());
            int[] pa = c.getSequencePages(a);
            int[] pb = c.getSequencePages(b);
            assertArrayEquals(new int[] {pa[0], pa[1], pb[0], 0}, bt.get(0).toIntArray());
            assertArrayEquals(new int[] {6, 1}, bt.get(1).toIntArray());
            NDList csr = c.exportCsr(m, b, a); // rows follow the order of the ids
            assertArrayEquals(new int[] {0, 1, 3}, csr.get(0).toIntArray());
            assertArrayEquals(new int[] {pb[0], pa[0], pa[1]}, csr.get(1).toIntArray());
            assertArrayEquals(new int[] {1, 2}, csr.get(2).toIntArray());
            // contents: token j of a sits at its slot
            NDArray flat = c.getKeyPages(0).reshape(32, 2, 4);
            for (int j = 0; j < 6; j++) {
                assertEquals(ka.get(j), flat.get(t.getSlot(0, j)), "token " + j);
            }
            assertEquals(kb.get(0), flat.get(t.getSlot(1, 0)));
            // a chunk that spans pages, then single tokens
            c.append(a, kv(m, 5), kv(m, 5));
            c.append(a, kv(m, 1), kv(m, 1));
            assertEquals(12, c.getSequenceLength(a));
            assertEquals(3, c.getSequencePages(a).length);
            assertThrows(IllegalArgumentException.class, () -> c.pageTable());
        }
    }

    @Test
    void multiLayerProtocolReservesOnceAndWritesPerLayer() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(16, 4, 3)) {
            long a = c.addSequence();
            long b = c.addSequence();
            c.append(a, new NDList(kv(m, 2), kv(m, 2), kv(m, 2)), new NDList(kv(m, 2), kv(m, 2), kv(m, 2)));
            int usedBefore = c.getUsedPageCount();
            NDArray[] keys = new NDArray[3];
            NDArray[] values = new NDArray[3];
            try (SlotMapping step = c.reserve(new long[] {a, b}, new int[] {3, 5})) {
                assertEquals(8, step.size());
                assertArrayEquals(new int[] {2, 0}, step.getStartPositions());
                assertEquals(5, c.getSequenceLength(a), "reserved tokens count at once");
                assertEquals(usedBefore + 1 + 2, c.getUsedPageCount(), "one more page for a, two for b");
                for (int l = 0; l < 3; l++) {
                    keys[l] = kv(m, 8);
                    values[l] = kv(m, 8);
                    c.write(l, step, keys[l], values[l]);
                }
                long[] slots = step.getSlots();
                for (int l = 0; l < 3; l++) {
                    NDArray kFlat = c.getKeyPages(l).reshape(64, 2, 4);
                    NDArray vFlat = c.getValuePages(l).reshape(64, 2, 4);
                    for (int t = 0; t < 8; t++) {
                        assertEquals(keys[l].get(t), kFlat.get(slots[t]), "layer " + l + " token " + t);
                        assertEquals(values[l].get(t), vFlat.get(slots[t]));
                    }
                }
                PageTable table = c.pageTable(a, b);
                assertEquals(table.getSlot(0, 2), slots[0], "a's first new token is its token 2");
                assertEquals(table.getSlot(1, 4), slots[7]);
                assertRejected(IllegalArgumentException.class, c, () -> c.write(3, step, keys[0], values[0]),
                        "layer 3", "0..2");
                assertRejected(IllegalArgumentException.class, c, () -> c.write(0, step, kv(m, 7), kv(m, 7)),
                        "[8, 2, 4]");
                assertRejected(IllegalArgumentException.class, c,
                        () -> c.write(0, step, m.zeros(new Shape(8, 2, 8)), m.zeros(new Shape(8, 2, 8))),
                        "cache head dim 4");
                assertRejected(IllegalArgumentException.class, c,
                        () -> c.write(0, step, keys[0].toType(DataType.FLOAT16, false), values[0]), "float16");
            }
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> c.append(a, kv(m, 1), kv(m, 1)));
            assertTrue(e.getMessage().contains("3 layers"), e.getMessage());
        }
    }

    @Test
    void rejectedCallsLeaveTheCacheUnchanged() {
        try (NDManager m = manager.newSubManager();
                PagedKvCache c = PagedKvCache.builder().setNumPages(4).setPageSize(4).setKvHeads(2).setHeadDim(4)
                        .optMaxSequenceLength(14).optPoisonFreedPages(true).build()) {
            long a = c.addSequence();
            c.append(a, kv(m, 10), kv(m, 10)); // 3 pages, 1 free
            long b = c.addSequence();
            assertRejected(IllegalArgumentException.class, c, () -> c.reserve(a, 5), "would reach 15",
                    "beyond maxSequenceLength 14");
            assertRejected(OutOfPagesException.class, c, () -> c.reserve(new long[] {b, a}, new int[] {4, 4}),
                    "out of pages", "needs 2 free pages, 1 free");
            OutOfPagesException e = assertThrows(OutOfPagesException.class,
                    () -> c.reserve(new long[] {b, a}, new int[] {4, 4}));
            assertEquals(2, e.getNeeded());
            assertEquals(1, e.getFree());
            assertEquals(0, c.getSequenceLength(b), "b did not grow although its own page was available");
            assertRejected(IllegalArgumentException.class, c, () -> c.reserve(99, 1), "unknown sequence id 99");
            assertRejected(IllegalArgumentException.class, c, () -> c.free(99), "unknown sequence id 99");
            assertRejected(IllegalArgumentException.class, c, () -> c.fork(99), "unknown sequence id 99");
            assertRejected(IllegalArgumentException.class, c, () -> c.append(99, kv(m, 1), kv(m, 1)),
                    "unknown sequence id 99");
            assertRejected(IllegalArgumentException.class, c, () -> c.pageTable(a, 99), "unknown sequence id 99");
            assertRejected(IllegalArgumentException.class, c, () -> c.reserve(new long[] {a, a}, new int[] {1, 1}),
                    "appears twice");
            assertRejected(IllegalArgumentException.class, c, () -> c.reserve(a, -1), "must be >= 0");
            assertRejected(IllegalArgumentException.class, c, () -> c.append(a, kv(m, 2), kv(m, 3)),
                    "must be [2, 2, 4]");
            assertRejected(IllegalArgumentException.class, c,
                    () -> c.append(a, m.zeros(new Shape(2, 2, 8)), m.zeros(new Shape(2, 2, 8))), "cache head dim 4");
            // a request within the limits succeeds
            c.append(a, kv(m, 3), kv(m, 3));
            assertEquals(13, c.getSequenceLength(a));
            assertEquals(0, c.getFreePageCount());
            // copy-on-write needs a page too: a full pool refuses the child's first write into the shared page
            c.free(b);
            long child = c.fork(a);
            assertEquals(0, c.getFreePageCount(), "fork allocates nothing");
            assertRejected(OutOfPagesException.class, c, () -> c.reserve(child, 1), "needs 1 free pages, 0 free");
        }
    }

    @Test
    void forkSharesPagesAndCopiesThePartialPageOnWrite() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(16, 4, 2)) {
            long a = c.addSequence();
            c.append(a, new NDList(kv(m, 6), kv(m, 6)), new NDList(kv(m, 6), kv(m, 6))); // pages p0 full, p1 2/4
            int[] pa = c.getSequencePages(a);
            int free = c.getFreePageCount();
            long child = c.fork(a);
            assertArrayEquals(pa, c.getSequencePages(child), "the child shares every page");
            assertEquals(free, c.getFreePageCount(), "fork allocates nothing");
            assertEquals(2, c.getRefCount(pa[0]));
            assertEquals(2, c.getRefCount(pa[1]));
            List<float[]> childContents = contents(c, pa);
            // the parent writes first: it copies the shared partial page, the child keeps the original
            c.append(a, new NDList(kv(m, 1), kv(m, 1)), new NDList(kv(m, 1), kv(m, 1)));
            int[] pa2 = c.getSequencePages(a);
            assertEquals(pa[0], pa2[0], "full pages stay shared");
            assertNotEquals(pa[1], pa2[1], "the partial page was copied");
            assertEquals(1, c.getRefCount(pa[1]));
            assertEquals(1, c.getRefCount(pa2[1]));
            assertEquals(2, c.getRefCount(pa[0]));
            assertEquals(free - 1, c.getFreePageCount());
            for (int l = 0; l < 2; l++) {
                for (NDArray pool : new NDArray[] {c.getKeyPages(l), c.getValuePages(l)}) {
                    NDArray copied = pool.get(new NDIndex("{}, 0:2", pa2[1]));
                    assertEquals(pool.get(new NDIndex("{}, 0:2", pa[1])), copied, "rows 0..1 copied, layer " + l);
                }
            }
            // the child's pages and their contents are untouched by the parent's write
            assertArrayEquals(pa, c.getSequencePages(child));
            assertArrayEquals(childContents.toArray(), contents(c, pa).toArray(),
                    "the child's pages keep their contents");
            // now the child is the only holder: it writes in place
            c.append(child, new NDList(kv(m, 1), kv(m, 1)), new NDList(kv(m, 1), kv(m, 1)));
            assertArrayEquals(pa, c.getSequencePages(child), "no copy when the count is 1");
            assertEquals(free - 1, c.getFreePageCount());
            // parent and child extending in one reservation: one copy, one in-place write
            long g = c.fork(child); // child: 7 tokens, last page 3/4 shared by child and g
            int freeBefore = c.getFreePageCount();
            try (SlotMapping step = c.reserve(new long[] {child, g}, new int[] {1, 1})) {
                assertEquals(freeBefore - 1, c.getFreePageCount(), "only the first writer copies");
                assertEquals(2, step.size());
            }
            // page-aligned fork: nothing to copy, the next token starts a new page
            long h = c.fork(a); // a: 7 tokens
            c.append(h, new NDList(kv(m, 1), kv(m, 1)), new NDList(kv(m, 1), kv(m, 1))); // h: 8, copies the partial
            long i = c.fork(h); // 8 tokens: page-aligned
            int before = c.getFreePageCount();
            c.append(i, new NDList(kv(m, 1), kv(m, 1)), new NDList(kv(m, 1), kv(m, 1)));
            assertEquals(before - 1, c.getFreePageCount());
            int[] ph = c.getSequencePages(h);
            int[] pi = c.getSequencePages(i);
            assertArrayEquals(ph, Arrays.copyOf(pi, 2), "i still shares all of h's pages");
        }
    }

    @Test
    void aReservationMadeBeforeATruncateIsRefused() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(4, 4, 1)) {
            long s1 = c.addSequence();
            SlotMapping stale = c.reserve(s1, 4); // page 0
            c.truncate(s1, 0); // page 0 back in the pool
            long s2 = c.addSequence();
            NDArray k2 = kv(m, 4);
            try (SlotMapping fresh = c.reserve(s2, 4)) { // gets page 0
                c.write(0, fresh, k2, k2);
            }
            assertRejected(IllegalStateException.class, c, () -> c.write(0, stale, kv(m, 4), kv(m, 4)),
                    "sequence " + s1 + " was truncated after this slot mapping was reserved", "reserve again");
            int page = c.getSequencePages(s2)[0];
            assertEquals(k2, c.getKeyPages(0).get(new NDIndex("{}", page)), "s2's keys are untouched");
            // a truncate that keeps every token leaves reservations valid
            long s3 = c.addSequence();
            try (SlotMapping ok = c.reserve(s3, 2)) {
                c.truncate(s3, 2);
                c.write(0, ok, kv(m, 2), kv(m, 2));
            }
            stale.close();
        }
    }

    @Test
    void forkBetweenReserveAndWriteGivesTheChildTheWrittenTokensOnly() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(8, 4, 2)) {
            long parent = c.addSequence();
            NDArray[] first = {kv(m, 5), kv(m, 5)}; // per layer; K and V alike
            c.append(parent, new NDList(first), new NDList(first)); // 5 tokens: page 0 full, page 1 1/4
            SlotMapping step = c.reserve(parent, 3); // tokens 5..7 reserved, not yet written (NaN-poisoned rows)
            long early = c.fork(parent);
            assertEquals(5, c.getSequenceLength(early), "tokens reserved but not written stay the parent's");
            c.write(0, step, kv(m, 3), kv(m, 3));
            long half = c.fork(parent);
            assertEquals(5, c.getSequenceLength(half), "written to one of two layers: still pending");
            NDArray[] second = {kv(m, 3), kv(m, 3)};
            c.write(1, step, second[1], second[1]);
            step.close();
            long late = c.fork(parent);
            assertEquals(8, c.getSequenceLength(late), "written to every layer: the child gets them");
            assertEquals(8, c.getSequenceLength(parent));
            // the early child reads exactly the parent's first 5 tokens: no NaN row
            for (int l = 0; l < 2; l++) {
                float[] got = gather(c, early, l);
                assertArrayEquals(first[l].toFloatArray(), got, "layer " + l + ": the early child's keys");
            }
            // and extends from there with its own tokens; the parent's rows stay the parent's
            NDArray[] own = {kv(m, 2), kv(m, 2)};
            c.append(early, new NDList(own), new NDList(own));
            assertEquals(7, c.getSequenceLength(early));
            float[] parentKeys = gather(c, parent, 1);
            assertArrayEquals(second[1].toFloatArray(), Arrays.copyOfRange(parentKeys, 5 * 8, 8 * 8),
                    "the parent's tokens 5..7");
        }
    }

    // One sequence's keys of one layer, in token order [length, Hkv, D], read through its page list.
    private static float[] gather(PagedKvCache c, long seq, int layer) {
        int len = c.getSequenceLength(seq);
        int[] pages = c.getSequencePages(seq);
        float[] out = new float[len * 8];
        for (int t = 0; t < len; t++) {
            float[] row = c.getKeyPages(layer).get(new NDIndex("{}, {}", pages[t / 4], t % 4)).toFloatArray();
            System.arraycopy(row, 0, out, t * 8, 8);
        }
        return out;
    }

    private static List<float[]> contents(PagedKvCache c, int[] pages) {
        List<float[]> out = new ArrayList<>();
        for (int l = 0; l < c.getNumLayers(); l++) {
            for (int p : pages) {
                out.add(c.getKeyPages(l).get(new NDIndex("{}", p)).toFloatArray());
                out.add(c.getValuePages(l).get(new NDIndex("{}", p)).toFloatArray());
            }
        }
        return out;
    }

    @Test
    void freeReturnsPagesAndPoisonsThem() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(8, 4, 2)) {
            long a = c.addSequence();
            c.append(a, new NDList(kv(m, 6), kv(m, 6)), new NDList(kv(m, 6), kv(m, 6)));
            long child = c.fork(a);
            long b = c.addSequence();
            c.append(b, new NDList(kv(m, 5), kv(m, 5)), new NDList(kv(m, 5), kv(m, 5)));
            int[] pa = c.getSequencePages(a);
            int[] pb = c.getSequencePages(b);
            float[] shared = c.getKeyPages(1).get(new NDIndex("{}", pa[0])).toFloatArray();
            assertEquals(4, c.getUsedPageCount());
            c.free(a);
            assertFalse(c.containsSequence(a));
            assertEquals(4, c.getUsedPageCount(), "the child still holds a's pages");
            assertEquals(1, c.getRefCount(pa[0]));
            assertArrayEquals(shared, c.getKeyPages(1).get(new NDIndex("{}", pa[0])).toFloatArray(),
                    "shared pages keep their contents");
            c.free(b);
            assertEquals(2, c.getUsedPageCount());
            assertEquals(6, c.getFreePageCount());
            for (int p : pb) {
                assertEquals(0, c.getRefCount(p));
                for (int l = 0; l < 2; l++) {
                    assertTrue(Float.isNaN(c.getKeyPages(l).get(new NDIndex("{}", p)).max().getFloat()),
                            "freed page " + p + " is NaN again (layer " + l + ")");
                    assertTrue(Float.isNaN(c.getValuePages(l).get(new NDIndex("{}", p)).min().getFloat()));
                }
            }
            c.free(child);
            assertEquals(8, c.getFreePageCount());
            assertEquals(0, c.getSequenceIds().length);
            // freed pages are reused
            long d = c.addSequence();
            c.append(d, new NDList(kv(m, 32), kv(m, 32)), new NDList(kv(m, 32), kv(m, 32)));
            assertEquals(0, c.getFreePageCount());
            assertThrows(IllegalArgumentException.class, () -> c.getSequenceLength(a), "freed ids are unknown");
        }
    }

    @Test
    void truncateReleasesTrailingPages() {
        try (NDManager m = manager.newSubManager(); PagedKvCache c = cache(8, 4, 1)) {
            long a = c.addSequence();
            c.append(a, kv(m, 10), kv(m, 10)); // 3 pages
            long b = c.fork(a);
            int[] pages = c.getSequencePages(a);
            assertRejected(IllegalArgumentException.class, c, () -> c.truncate(a, 11), "outside 0..10");
            c.truncate(a, 5); // keeps 2 pages; the third stays with b
            assertEquals(5, c.getSequenceLength(a));
            assertArrayEquals(Arrays.copyOf(pages, 2), c.getSequencePages(a));
            assertEquals(1, c.getRefCount(pages[2]));
            assertEquals(3, c.getUsedPageCount());
            c.truncate(b, 4); // b drops pages 1 and 2: page 2 becomes free (and NaN), page 1 stays with a
            assertEquals(0, c.getRefCount(pages[2]));
            assertTrue(Float.isNaN(c.getKeyPages(0).get(new NDIndex("{}", pages[2])).sum().getFloat()));
            assertEquals(1, c.getRefCount(pages[1]));
            // a writes into its page 1, which it now holds alone: in place
            c.append(a, kv(m, 1), kv(m, 1));
            assertArrayEquals(Arrays.copyOf(pages, 2), c.getSequencePages(a));
            c.truncate(a, 0);
            assertEquals(0, c.getSequencePages(a).length);
            assertEquals(1, c.getUsedPageCount(), "only b's first page is left");
        }
    }

    @Test
    void closedCacheRefusesCalls() {
        PagedKvCache c = cache(2, 4, 1);
        long a = c.addSequence();
        c.close();
        assertThrows(IllegalStateException.class, () -> c.reserve(a, 1));
        assertThrows(IllegalStateException.class, c::addSequence);
        c.close(); // idempotent
    }
}
