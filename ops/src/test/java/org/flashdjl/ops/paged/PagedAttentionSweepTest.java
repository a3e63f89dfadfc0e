package org.flashdjl.ops.paged;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.testing.CountingPagedBackend;
import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Paged decode and append / chunked prefill against (1) the contiguous {@link Attention} ({@code math} backend)
 * on each sequence's gathered K/V with the same spec and (2) the float64 reference: page sizes 1, 7, 16, 64, GQA
 * 1/4/8, odd lengths with partly filled last pages, every option set, fp32 and fp16. The pools are NaN outside
 * the sequences' slots (unused pages and the tail of each last page), so any read outside the page table shows.
 */
@ExtendWith(Seeds.class)
class PagedAttentionSweepTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** One case of the sweep. */
    record Case(boolean decode, int pageSize, int hq, int hkv, int d, String option, int[] seqLens, int[] qLens,
            DataType type) {
        @Override
        public String toString() {
            return (decode ? "decode" : "prefill") + " page=" + pageSize + " H=" + hq + "/" + hkv + " d=" + d + " "
                    + option + " Lk=" + java.util.Arrays.toString(seqLens) + " Lq=" + java.util.Arrays.toString(qLens)
                    + " " + type;
        }
    }

    static Stream<Arguments> cases() {
        int[] pageSizes = {1, 7, 16, 64};
        int[][] heads = {{4, 4}, {8, 2}, {8, 1}};
        int[][] lens = {{1, 17, 113, 64}, {65, 3, 128, 16}, {33, 1, 7, 100}};
        int[][] qLens = {{1, 5, 17, 0}, {3, 3, 1, 16}, {33, 1, 2, 9}};
        List<Arguments> cases = new ArrayList<>();
        int n = 0;
        for (boolean decode : new boolean[] {true, false}) {
            for (int pageSize : pageSizes) {
                for (int[] h : heads) {
                    for (int r = 0; r < 2; r++, n++) {
                        String option = PagedFixture.OPTIONS[n % PagedFixture.OPTIONS.length];
                        int[] lk = lens[n % lens.length];
                        int[] lq = decode ? new int[] {1, 1, 1, 1} : qLens[n % qLens.length];
                        int d = n % 3 == 0 ? 64 : 32;
                        DataType type = n % 5 == 4 ? DataType.FLOAT16 : DataType.FLOAT32;
                        cases.add(Arguments.of(new Case(decode, pageSize, h[0], h[1], d, option, lk, lq, type)));
                    }
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesContiguousAttentionAndReference(Case c) {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            PagedFixture f = PagedFixture.create(m, rnd, c.pageSize(), c.hkv(), c.d(), c.seqLens(), 3, c.type());
            int b = c.seqLens().length;
            int[] qo = new int[b + 1];
            for (int i = 0; i < b; i++) {
                qo[i + 1] = qo[i] + c.qLens()[i];
            }
            int row = c.hq() * c.d();
            float[] q = PagedFixture.randn(m, rnd, qo[b] * row, c.type());
            Reference.Options ro = new Reference.Options();
            ro.scale = 1.0 / Math.sqrt(c.d());
            AttentionSpec spec = OptionSets.spec(c.option(), c.hq(), ro, rnd);
            NDArray qa = Reference.create(m, q, c.type(), qo[b], c.hq(), c.d());
            AttentionOutput out = c.decode()
                    ? PagedAttention.decode(qa, f.kPages, f.vPages, f.table, spec)
                    : PagedAttention.prefill(qa, qo, f.kPages, f.vPages, f.table, spec);
            assertEquals(c.type(), out.getOutput().getDataType(), "output keeps the query dtype");
            assertEquals(new ai.djl.ndarray.types.Shape(qo[b], c.hq(), c.d()), out.getOutput().getShape());
            assertEquals(new ai.djl.ndarray.types.Shape(qo[b], c.hq()), out.getLse().getShape());
            assertEquals(DataType.FLOAT32, out.getLse().getDataType());
            double[] got = Reference.toDoubles(out.getOutput());
            double[] gotLse = Reference.toDoubles(out.getLse());
            double tol = Reference.outputTolerance(c.type(), 2e-5, Reference.maxAbs(got));
            AttentionSpec bshd = spec.toBuilder().optLayout(QkvLayout.BSHD).build();
            for (int i = 0; i < b; i++) {
                int lq = c.qLens()[i];
                int lk = c.seqLens()[i];
                if (lq == 0) {
                    continue;
                }
                float[] qs = java.util.Arrays.copyOfRange(q, qo[i] * row, qo[i + 1] * row);
                double[] gotOut = java.util.Arrays.copyOfRange(got, qo[i] * row, qo[i + 1] * row);
                double[] gotL = java.util.Arrays.copyOfRange(gotLse, qo[i] * c.hq(), qo[i + 1] * c.hq());
                // (1) the contiguous operator on the gathered K/V, same spec
                NDArray qb = Reference.create(m, qs, c.type(), 1, lq, c.hq(), c.d());
                NDArray kb = Reference.create(m, f.keys[i], c.type(), 1, lk, c.hkv(), c.d());
                NDArray vb = Reference.create(m, f.values[i], c.type(), 1, lk, c.hkv(), c.d());
                AttentionOutput dense = Attention.forward(qb, kb, vb, bshd, "math");
                double denseErr = Reference.maxAbsDiff(gotOut, Reference.toDoubles(dense.getOutput()));
                assertTrue(denseErr <= tol, "sequence " + i + ": paged vs contiguous Attention " + denseErr);
                double[] denseLse = Reference.toDoubles(dense.getLse().get(new NDIndex("0"))); // bshd: [Lq, Hq]
                assertTrue(Reference.maxAbsDiff(gotL, denseLse) <= 1e-4, "sequence " + i + ": LSE vs contiguous");
                // (2) float64 reference
                double[][] ref = PagedFixture.reference(qs, f.keys[i], f.values[i], lq, lk, c.hq(), c.hkv(), c.d(),
                        ro, 0);
                double err = Reference.maxAbsDiff(gotOut, ref[0]);
                assertTrue(err <= tol, "sequence " + i + ": output error vs float64 " + err + " > " + tol);
                double lseErr = Reference.maxAbsDiff(gotL, ref[1]);
                assertTrue(lseErr <= 1e-4, "sequence " + i + ": LSE error vs float64 " + lseErr);
            }
        }
    }

    @Test
    void blockTableFormGivesTheSameResultAsCsr() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager()) {
            PagedFixture f = PagedFixture.create(m, rnd, 16, 2, 32, new int[] {40, 1, 16, 77}, 2, DataType.FLOAT32);
            int width = f.table.getMaxPagesPerSequence() + 2; // extra padding columns
            PageTable fromBlocks = PageTable.fromBlockTable(16, f.table.getBlockTable(width), f.table.getSeqLens(),
                    f.numPages);
            NDArray q = m.randomNormal(new ai.djl.ndarray.types.Shape(4, 8, 32));
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
            AttentionOutput a = PagedAttention.decode(q, f.kPages, f.vPages, f.table, spec);
            AttentionOutput b = PagedAttention.decode(q, f.kPages, f.vPages, fromBlocks, spec);
            assertEquals(a.getOutput(), b.getOutput(), "block-table and CSR forms read the same pages");
            assertEquals(a.getLse(), b.getLse());
            AttentionOutput noLse = PagedAttention.decode(q, f.kPages, f.vPages, f.table,
                    AttentionSpec.builder().build());
            assertNull(noLse.getLse(), "no LSE unless the spec asks");
        }
    }

    @Test
    void planIsPreparedOnceAndReusedByEveryLayer() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        try (NDManager m = manager.newSubManager()) {
            // different lengths and query counts: several groups, a permutation
            int hq = 8;
            int d = 32;
            PagedFixture f = PagedFixture.create(m, rnd, 16, 2, d, new int[] {40, 9, 40, 77}, 1, DataType.FLOAT32);
            int[] qo = {0, 2, 3, 5, 9};
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
            Reference.Options ro = new Reference.Options();
            ro.scale = 1.0 / Math.sqrt(d);
            ro.causal = true;
            long prepares = CountingPagedBackend.prepares();
            long forwards = CountingPagedBackend.forwards();
            try (PagedPlan plan = PagedPlan.builder(f.table).optQoIndptr(qo).setQueryHeads(hq).setKvHeads(2)
                    .setHeadDim(d).optDevice(m.getDevice()).optBackend(CountingPagedBackend.NAME).build()) {
                PagedAttentionBackend.PlanData ws = plan.getPlanData();
                for (int layer = 0; layer < 4; layer++) {
                    float[] q = PagedFixture.randn(m, rnd, qo[4] * hq * d, DataType.FLOAT32);
                    AttentionOutput out = plan.forward(Reference.create(m, q, DataType.FLOAT32, qo[4], hq, d),
                            f.kPages, f.vPages, spec);
                    double[] got = Reference.toDoubles(out.getOutput());
                    for (int i = 0; i < 4; i++) {
                        int lq = qo[i + 1] - qo[i];
                        double[][] ref = PagedFixture.reference(
                                java.util.Arrays.copyOfRange(q, qo[i] * hq * d, qo[i + 1] * hq * d), f.keys[i],
                                f.values[i], lq, f.seqLens[i], hq, 2, d, ro, 0);
                        double err = Reference.maxAbsDiff(
                                java.util.Arrays.copyOfRange(got, qo[i] * hq * d, qo[i + 1] * hq * d), ref[0]);
                        assertTrue(err <= 2e-5, "layer " + layer + ", sequence " + i + ": error vs float64 " + err
                                + " (seed " + seed + ")");
                    }
                    assertTrue(plan.getPlanData() == ws, "the same plan data every layer");
                }
            }
            assertEquals(prepares + 1, CountingPagedBackend.prepares(), "one prepare per plan (seed " + seed + ")");
            assertEquals(forwards + 4, CountingPagedBackend.forwards(), "one run per layer (seed " + seed + ")");
        }
    }
}
