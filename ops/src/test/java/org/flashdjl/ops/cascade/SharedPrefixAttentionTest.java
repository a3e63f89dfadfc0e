package org.flashdjl.ops.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PagedAttention;
import org.flashdjl.ops.paged.PagedFixture;
import org.flashdjl.ops.paged.PagedPlan;
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
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Shared-prefix cascade decode and prefill equal plain paged attention over the concatenated prefix + suffix, for
 * every option set (masks that cut the prefix, ALiBi and sinks included), empty suffixes, page sizes 1/16, GQA;
 * the plan is built once per step and reused by every layer.
 */
@ExtendWith(Seeds.class)
class SharedPrefixAttentionTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** One case. */
    record Case(boolean decode, String option, int prefix, int pageSize, int hq, int hkv, DataType type) {
        @Override
        public String toString() {
            return (decode ? "decode" : "prefill") + " " + option + " P=" + prefix + " page=" + pageSize + " H="
                    + hq + "/" + hkv + " " + type;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        int[] prefixes = {37, 64, 0, 5};
        int[][] heads = {{8, 2}, {4, 4}, {8, 1}};
        int n = 0;
        for (boolean decode : new boolean[] {true, false}) {
            for (String option : PagedFixture.OPTIONS) {
                int[] h = heads[n % heads.length];
                DataType type = n == 7 ? DataType.FLOAT16 : DataType.FLOAT32;
                cases.add(Arguments.of(new Case(decode, option, prefixes[n % prefixes.length], n % 2 == 0 ? 16 : 1,
                        h[0], h[1], type)));
                n++;
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void cascadeEqualsPlainPagedAttentionOverPrefixPlusSuffix(Case c) {
        Random rnd = new Random(Seeds.next());
        int d = 32;
        int row = c.hkv() * d;
        // suffix lengths: an empty one, a one-token one, odd lengths; queries: last tokens of each sequence
        int[] suffix = c.decode() ? new int[] {0, 1, 17, 40} : new int[] {0, 9, 17, 40};
        if (c.prefix() == 0 && c.decode()) {
            suffix[0] = 1; // a decode query needs at least its own key
        }
        int[] qLens = c.decode() ? new int[] {1, 1, 1, 1} : new int[] {c.prefix() > 0 ? 2 : 0, 9, 5, 1};
        try (NDManager m = manager.newSubManager()) {
            float[] kShared = PagedFixture.randn(m, rnd, c.prefix() * row, c.type());
            float[] vShared = PagedFixture.randn(m, rnd, c.prefix() * row, c.type());
            PagedFixture sfx = PagedFixture.create(m, rnd, c.pageSize(), c.hkv(), d, suffix, 2, c.type());
            float[][] fullK = new float[suffix.length][];
            float[][] fullV = new float[suffix.length][];
            for (int b = 0; b < suffix.length; b++) {
                fullK[b] = concat(kShared, sfx.keys[b]);
                fullV[b] = concat(vShared, sfx.values[b]);
            }
            PagedFixture full = PagedFixture.of(m, rnd, c.pageSize(), c.hkv(), d, fullK, fullV, 1, c.type());
            int[] qo = new int[suffix.length + 1];
            for (int b = 0; b < suffix.length; b++) {
                qo[b + 1] = qo[b] + qLens[b];
            }
            Reference.Options ro = new Reference.Options();
            ro.scale = 1.0 / Math.sqrt(d);
            AttentionSpec spec = OptionSets.spec(c.option(), c.hq(), ro, rnd);
            NDArray ks = Reference.create(m, kShared, c.type(), c.prefix(), c.hkv(), d);
            NDArray vs = Reference.create(m, vShared, c.type(), c.prefix(), c.hkv(), d);
            NDArray q = Reference.create(m, PagedFixture.randn(m, rnd, qo[suffix.length] * c.hq() * d, c.type()),
                    c.type(), qo[suffix.length], c.hq(), d);
            AttentionOutput cascade;
            AttentionOutput plain;
            if (c.decode()) {
                try (SharedPrefixBatchDecode wrapper = new SharedPrefixBatchDecode()) {
                    NDList csr = sfx.table.toCsrArrays(m);
                    wrapper.beginForward(csr.get(0), csr.get(1), csr.get(2), c.hq(), c.hkv(), d, c.pageSize());
                    cascade = wrapper.forward(q, ks, vs, sfx.kPages, sfx.vPages, spec);
                    wrapper.endForward();
                }
                plain = PagedAttention.decode(q, full.kPages, full.vPages, full.table, spec);
            } else {
                try (SharedPrefixBatchPrefill wrapper = new SharedPrefixBatchPrefill()) {
                    wrapper.beginForward(qo, sfx.table, c.hq(), c.hkv(), d, m.getDevice());
                    cascade = wrapper.forward(q, ks, vs, sfx.kPages, sfx.vPages, spec);
                }
                plain = PagedAttention.prefill(q, qo, full.kPages, full.vPages, full.table, spec);
            }
            assertEquals(plain.getOutput().getShape(), cascade.getOutput().getShape());
            assertEquals(c.type(), cascade.getOutput().getDataType());
            double[] plainOut = Reference.toDoubles(plain.getOutput());
            double tol = Reference.outputTolerance(c.type(), 2e-5, Reference.maxAbs(plainOut));
            double err = Reference.maxAbsDiff(Reference.toDoubles(cascade.getOutput()), plainOut);
            assertTrue(err <= tol, "cascade vs plain paged output " + err + " > " + tol);
            double lseErr = Reference.maxAbsDiff(Reference.toDoubles(cascade.getLse()),
                    Reference.toDoubles(plain.getLse()));
            assertTrue(lseErr <= 1e-4, "cascade vs plain paged LSE " + lseErr);
            // and both against float64 on the concatenated sequence
            double[] got = Reference.toDoubles(cascade.getOutput());
            for (int b = 0; b < suffix.length; b++) {
                int lq = qLens[b];
                if (lq == 0) {
                    continue;
                }
                float[] qb = Arrays.copyOfRange(q.toType(DataType.FLOAT32, false).toFloatArray(),
                        qo[b] * c.hq() * d, qo[b + 1] * c.hq() * d);
                double[][] ref = PagedFixture.reference(qb, fullK[b], fullV[b], lq, c.prefix() + suffix[b], c.hq(),
                        c.hkv(), d, ro, 0);
                double e = Reference.maxAbsDiff(Arrays.copyOfRange(got, qo[b] * c.hq() * d, qo[b + 1] * c.hq() * d),
                        ref[0]);
                assertTrue(e <= tol, "request " + b + " vs float64: " + e);
            }
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    @Test
    void planIsBuiltOncePerStepAndReusedByEveryLayer() {
        Random rnd = new Random(Seeds.next());
        int d = 32;
        try (NDManager m = manager.newSubManager();
                SharedPrefixBatchDecode wrapper = new SharedPrefixBatchDecode(CountingPagedBackend.NAME, "auto")) {
            assertThrows(IllegalStateException.class, () -> wrapper.forward(m.zeros(new Shape(3, 8, d)),
                    m.zeros(new Shape(4, 2, d)), m.zeros(new Shape(4, 2, d)), m.zeros(new Shape(4, 16, 2, d)),
                    m.zeros(new Shape(4, 16, 2, d)), AttentionSpec.builder().build()), "forward before begin");
            int layers = 3;
            PagedFixture[] suffixes = new PagedFixture[layers];
            for (int l = 0; l < layers; l++) {
                // same page table (same shuffle seed), different contents per layer
                suffixes[l] = PagedFixture.create(m, new Random(7), 16, 2, d, new int[] {5, 30, 17}, 2,
                        DataType.FLOAT32);
            }
            long prepares = CountingPagedBackend.prepares();
            long forwards = CountingPagedBackend.forwards();
            wrapper.beginForward(suffixes[0].table, 8, 2, d, m.getDevice());
            PagedPlan plan = wrapper.getPlan();
            assertEquals(prepares + 1, CountingPagedBackend.prepares(), "beginForward prepares the plan");
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
            for (int l = 0; l < layers; l++) {
                NDArray q = m.randomNormal(new Shape(3, 8, d));
                NDArray ks = m.randomNormal(new Shape(40, 2, d));
                NDArray vs = m.randomNormal(new Shape(40, 2, d));
                AttentionOutput o = wrapper.forward(q, ks, vs, suffixes[l].kPages, suffixes[l].vPages, spec);
                assertEquals(new Shape(3, 8, d), o.getOutput().getShape());
                assertNull(o.getLse(), "LSE only when the spec asks");
                assertSame(plan, wrapper.getPlan(), "one plan per step");
            }
            assertEquals(prepares + 1, CountingPagedBackend.prepares(), "forward prepares nothing");
            assertEquals(forwards + layers, CountingPagedBackend.forwards(), "one suffix run per layer");
            wrapper.endForward();
            assertTrue(plan.isClosed());
            assertFalse(wrapper.isActive());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> wrapper.forward(
                    m.zeros(new Shape(3, 8, d)), m.zeros(new Shape(4, 2, d)), m.zeros(new Shape(4, 2, d)),
                    suffixes[0].kPages, suffixes[0].vPages, spec), "forward after end");
            assertTrue(e.getMessage().contains("beginForward"), e.getMessage());
        }
    }

    @Test
    void badSharedPrefixIsRejected() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager();
                SharedPrefixBatchPrefill wrapper = new SharedPrefixBatchPrefill()) {
            PagedFixture sfx = PagedFixture.create(m, rnd, 16, 2, 64, new int[] {5, 9}, 0, DataType.FLOAT32);
            NDArray qo = m.create(new int[] {0, 2, 5});
            NDList csr = sfx.table.toCsrArrays(m);
            wrapper.beginForward(qo, csr.get(0), csr.get(1), csr.get(2), 8, 2, 64, 16);
            NDArray q = m.randomNormal(new Shape(5, 8, 64));
            NDArray ks128 = m.zeros(new Shape(10, 2, 128));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> wrapper.forward(q, ks128, ks128, sfx.kPages, sfx.vPages, AttentionSpec.builder().build()));
            assertTrue(e.getMessage().contains("shared prefix head dim 128, query 64"), e.getMessage());
            NDArray ks = m.zeros(new Shape(10, 2, 64));
            NDArray vs = m.zeros(new Shape(11, 2, 64));
            assertThrows(IllegalArgumentException.class,
                    () -> wrapper.forward(q, ks, vs, sfx.kPages, sfx.vPages, AttentionSpec.builder().build()));
        }
    }
}
