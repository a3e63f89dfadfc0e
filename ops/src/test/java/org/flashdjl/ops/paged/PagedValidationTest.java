package org.flashdjl.ops.paged;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Random;

/** Seed 003's clear errors and the page-table forms: every bad input names the argument and the allowed values. */
@ExtendWith(Seeds.class)
class PagedValidationTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static void assertMessage(Throwable e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should contain '" + part
                    + "'");
        }
    }

    @Test
    void badPageSizesListTheAllowedRange() {
        for (int size : new int[] {0, -1, 257, 1024}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PageTable.fromCsr(size, new int[] {0, 1}, new int[] {0}, new int[] {1}, 4));
            assertMessage(e, "pageSize", "1..256", String.valueOf(size));
        }
        // any size in range works, powers of two or not
        for (int size : new int[] {1, 3, 7, 12, 100, 256}) {
            assertEquals(size, PageTable.fromCsr(size, new int[] {0, 1}, new int[] {0}, new int[] {1}, 4)
                    .getPageSize());
        }
    }

    @Test
    void badCsrTablesAreRejected() {
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 2, 1}, new int[] {0}, new int[] {1, 1}, 4)),
                "indptr", "monotone", "index 2");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {1, 2}, new int[] {0}, new int[] {1}, 4)),
                "indptr must start at 0");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 2}, new int[] {0}, new int[] {1}, 4)),
                "indptr must end at the number of page indices");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 1}, new int[] {0}, new int[] {5}, 4)),
                "lastPageLen[0] = 5", "1..4");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 1}, new int[] {0}, new int[] {0}, 4)),
                "lastPageLen[0] = 0", "1..4");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 0}, new int[0], new int[] {2}, 4)),
                "lastPageLen[0] = 2", "no page");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 1}, new int[] {4}, new int[] {1}, 4)),
                "page 4", "out of range", "0..3");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 1}, new int[] {-1}, new int[] {1}, 4)),
                "page -1", "out of range");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromCsr(4, new int[] {0, 1}, new int[] {0}, new int[] {1}, 0)),
                "numPages", "empty cache");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromBlockTable(4, new int[][] {{0, 9}}, new int[] {6}, 4)),
                "blockTable", "page 9", "0..3");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> PageTable.fromBlockTable(4, new int[][] {{0, 1}}, new int[] {9}, 4)),
                "seqLens[0] = 9", "0..8");
    }

    @Test
    void csrAndBlockTableFormsConvert() {
        PageTable csr = PageTable.fromCsr(16, new int[] {0, 3, 3, 4}, new int[] {5, 0, 7, 2}, new int[] {9, 0, 16},
                8);
        assertArrayEquals(new int[] {41, 0, 16}, csr.getSeqLens());
        int[][] blocks = csr.getBlockTable(3);
        assertArrayEquals(new int[] {5, 0, 7}, blocks[0]);
        assertArrayEquals(new int[] {0, 0, 0}, blocks[1], "padding is page 0");
        assertArrayEquals(new int[] {2, 0, 0}, blocks[2]);
        PageTable back = PageTable.fromBlockTable(16, blocks, csr.getSeqLens(), 8);
        assertArrayEquals(csr.getIndptr(), back.getIndptr());
        assertArrayEquals(csr.getIndices(), back.getIndices());
        assertArrayEquals(csr.getLastPageLen(), back.getLastPageLen());
        assertEquals(7L * 16 + 8, csr.getSlot(0, 40), "token 40 is row 8 of the third page (7)");
        try (NDManager m = manager.newSubManager()) {
            NDList arrays = csr.toCsrArrays(m);
            assertEquals(DataType.INT32, arrays.get(0).getDataType());
            assertArrayEquals(new int[] {0, 3, 3, 4}, arrays.get(0).toIntArray());
            assertArrayEquals(new int[] {5, 0, 7, 2}, arrays.get(1).toIntArray());
            assertArrayEquals(new int[] {9, 0, 16}, arrays.get(2).toIntArray());
            NDList bt = csr.toBlockTableArrays(m);
            assertEquals(new Shape(3, 3), bt.get(0).getShape());
            assertEquals(DataType.INT32, bt.get(0).getDataType());
            assertArrayEquals(new int[] {41, 0, 16}, bt.get(1).toIntArray());
            PageTable fromArrays = PageTable.fromCsr(16, arrays.get(0), arrays.get(1), arrays.get(2), 8);
            assertArrayEquals(csr.getIndices(), fromArrays.getIndices());
            PageTable fromBt = PageTable.fromBlockTable(16, bt.get(0), bt.get(1), 8);
            assertArrayEquals(csr.getIndices(), fromBt.getIndices());
        }
    }

    @Test
    void badCallsNameTheProblem() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            PagedFixture f = PagedFixture.create(m, rnd, 16, 2, 64, new int[] {20, 5}, 1, DataType.FLOAT32);
            AttentionSpec spec = AttentionSpec.builder().build();
            NDArray q128 = m.randomNormal(new Shape(2, 8, 128));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q128, f.kPages, f.vPages, f.table, spec)),
                    "cache head dim 64, query 128");
            NDArray q = m.randomNormal(new Shape(2, 8, 64));
            NDArray empty = m.zeros(new Shape(0, 16, 2, 64));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q, empty, empty, f.table, spec)), "empty cache");
            NDArray small = m.zeros(new Shape(2, 16, 2, 64));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q, small, small, f.table, spec)), "page table references page",
                    "allowed page indices 0..1");
            NDArray otherPage = m.zeros(new Shape(8, 8, 2, 64));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q, otherPage, otherPage, f.table, spec)), "cache page size 8",
                    "page table's 16");
            NDArray q6 = m.randomNormal(new Shape(2, 6, 64));
            NDArray k4 = m.zeros(new Shape(f.numPages, 16, 4, 64));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q6, k4, k4, f.table, spec)), "multiple of key/value heads");
            NDArray q16 = m.randomNormal(new Shape(2, 8, 64)).toType(DataType.FLOAT16, false);
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q16, f.kPages, f.vPages, f.table, spec)), "dtype");
            // more queries than cached keys: the queries must already be in the cache
            NDArray q9 = m.randomNormal(new Shape(9, 8, 64));
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.prefill(q9, new int[] {0, 3, 9}, f.kPages, f.vPages, f.table, spec)),
                    "sequence 1 has 6 query tokens but only 5 cached keys");
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.prefill(q9, new int[] {0, 5, 4}, f.kPages, f.vPages, f.table, spec)),
                    "qoIndptr", "monotone");
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.prefill(q9, new int[] {0, 4, 8}, f.kPages, f.vPages, f.table, spec)),
                    "q has 9 rows", "8 query tokens");
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q, f.kPages, f.vPages, f.table, spec, "nope")),
                    "unknown paged attention backend 'nope'", "gather");
            AttentionSpec alibi = AttentionSpec.builder().optAlibiSlopes(new float[] {1f, 2f}).build();
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> PagedAttention.decode(q, f.kPages, f.vPages, f.table, alibi)), "alibiSlopes has 2");
            try (PagedPlan fp16Plan = PagedPlan.builder(f.table).setQueryHeads(8).setKvHeads(2).setHeadDim(64)
                    .optDevice(m.getDevice()).optDataType(DataType.FLOAT16).build()) {
                assertMessage(assertThrows(IllegalArgumentException.class,
                        () -> fp16Plan.forward(q, f.kPages, f.vPages, spec)), "q is float32",
                        "plan was built for float16");
            }
            PagedPlan plan = PagedPlan.builder(f.table).setQueryHeads(8).setKvHeads(2).setHeadDim(64)
                    .optDevice(m.getDevice()).build();
            plan.forward(q, f.kPages, f.vPages, spec).close();
            plan.close();
            assertMessage(assertThrows(IllegalStateException.class,
                    () -> plan.forward(q, f.kPages, f.vPages, spec)), "closed");
        }
    }

    @Test
    void emptySequencesAndQueryFreeSequencesAreHandled() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            // sequence 1 has no token and no query; sequence 2 has tokens but no query
            PagedFixture f = PagedFixture.create(m, rnd, 4, 1, 16, new int[] {6, 0, 9}, 0, DataType.FLOAT32);
            NDArray q = m.randomNormal(new Shape(2, 2, 16));
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
            var out = PagedAttention.prefill(q, new int[] {0, 2, 2, 2}, f.kPages, f.vPages, f.table, spec);
            assertEquals(new Shape(2, 2, 16), out.getOutput().getShape());
            assertTrue(!Float.isNaN(out.getOutput().sum().getFloat()));
            // a cascade suffix may be empty while its query sits at the end of the prefix: output 0, LSE -inf
            try (PagedPlan plan = PagedPlan.builder(f.table).setQueryHeads(2).setKvHeads(1).setHeadDim(16)
                    .optQoIndptr(new int[] {0, 1, 2, 3}).optDevice(m.getDevice()).build()) {
                assertEquals(1, plan.getMinKeyOffset());
                var o = plan.forward(m.randomNormal(new Shape(3, 2, 16)), f.kPages, f.vPages, spec, 10);
                float[] lse = o.getLse().toFloatArray();
                assertEquals(Float.NEGATIVE_INFINITY, lse[2]);
                assertEquals(Float.NEGATIVE_INFINITY, lse[3]);
                assertEquals(0f, o.getOutput().get("1").abs().sum().getFloat());
            }
        }
    }
}
