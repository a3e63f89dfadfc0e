package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Every backend against the float64 reference: each option on and off, both layouts, GQA 1/4/8, lengths
 * 1/17/113 with Lq != Lk, head dims 32/64/128, fp32 and fp16, fresh random inputs per case.
 */
@ExtendWith(Seeds.class)
class AttentionSweepTest {

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
    record Case(String options, int lq, int lk, int hq, int hkv, int d, QkvLayout layout, DataType type, int b) {
        @Override
        public String toString() {
            return options + " Lq=" + lq + " Lk=" + lk + " H=" + hq + "/" + hkv + " d=" + d + " "
                    + layout.name().toLowerCase() + " " + type + " B=" + b;
        }
    }

    static final String[] OPTIONS = OptionSets.OPTIONS;

    static Stream<Arguments> cases() {
        int[][] lengths = {{1, 1}, {17, 17}, {113, 113}, {17, 113}, {113, 17}, {1, 113}};
        int[][] heads = {{4, 4}, {8, 2}, {8, 1}};
        int[] dims = {32, 64, 128};
        List<Arguments> cases = new ArrayList<>();
        int n = 0;
        for (String option : OPTIONS) {
            for (QkvLayout layout : QkvLayout.values()) {
                for (int r = 0; r < 3; r++, n++) {
                    int[] len = lengths[n % lengths.length];
                    int[] h = heads[(n / 2) % heads.length];
                    int d = dims[(n / 3) % dims.length];
                    DataType type = n % 4 == 3 ? DataType.FLOAT16 : DataType.FLOAT32;
                    for (String backend : new String[] {"math", "online"}) {
                        cases.add(Arguments.of(backend,
                                new Case(option, len[0], len[1], h[0], h[1], d, layout, type, 1 + n % 2)));
                    }
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void matchesFloat64Reference(String backend, Case c) {
        Random rnd = new Random(Seeds.next());
        int b = c.b();
        float[] q = Reference.randn(rnd, b * c.hq() * c.lq() * c.d());
        float[] k = Reference.randn(rnd, b * c.hkv() * c.lk() * c.d());
        float[] v = Reference.randn(rnd, b * c.hkv() * c.lk() * c.d());
        if (c.type() == DataType.FLOAT16) {
            q = Reference.roundToHalf(manager, q);
            k = Reference.roundToHalf(manager, k);
            v = Reference.roundToHalf(manager, v);
        }
        Reference.Options ro = new Reference.Options();
        ro.scale = 1.0 / Math.sqrt(c.d());
        AttentionSpec spec = OptionSets.spec(c.options(), c.hq(), ro, rnd).toBuilder().optLayout(c.layout()).build();
        Reference.Result ref = Reference.attention(q, k, v, b, c.hq(), c.hkv(), c.lq(), c.lk(), c.d(), c.d(), ro);

        try (NDManager m = manager.newSubManager()) {
            NDArray qa = input(m, q, c, c.hq(), c.lq());
            NDArray ka = input(m, k, c, c.hkv(), c.lk());
            NDArray va = input(m, v, c, c.hkv(), c.lk());
            AttentionBackend impl = backend.equals("online") ? new OnlineBackend(7, 5) : new MathBackend();
            AttentionOutput out = impl.forward(AttentionProblem.builder(qa, ka, va, spec).build());
            assertEquals(c.type(), out.getOutput().getDataType(), "output keeps the input dtype");
            assertEquals(DataType.FLOAT32, out.getLse().getDataType(), "LSE is fp32");
            NDArray o = c.layout() == QkvLayout.BSHD ? out.getOutput().transpose(0, 2, 1, 3) : out.getOutput();
            double[] got = Reference.toDoubles(o.duplicate());
            double err = Reference.maxAbsDiff(got, ref.out);
            // docs/SEMANTICS.md's budget: twice the error of a float32 run of the same math, plus 1e-5; fp16 outputs
            // also carry the output rounding (half an ulp: 2^-11 relative).
            double tol = Reference.budget(Reference.attentionFloat32(q, k, v, b, c.hq(), c.hkv(), c.lq(), c.lk(),
                    c.d(), c.d(), ro).out, ref.out);
            if (c.type() == DataType.FLOAT16) {
                tol = Math.max(tol, 1e-3 * Math.max(1, maxAbs(ref.out)));
            }
            assertTrue(err <= tol, "output error " + err + " > " + tol);
            // the LSE has the output's shape without Dv: [B, Lq, Hq] for bshd; the reference is [B, Hq, Lq]
            assertEquals(out.getOutput().getShape().slice(0, 3), out.getLse().getShape(), "LSE shape");
            NDArray lse = c.layout() == QkvLayout.BSHD ? out.getLse().transpose(0, 2, 1) : out.getLse();
            double lseErr = Reference.maxAbsDiff(Reference.toDoubles(lse.duplicate()), ref.lse);
            assertTrue(lseErr <= 1e-4, "LSE error " + lseErr);
        }
    }

    static double maxAbs(double[] x) {
        double m = 0;
        for (double v : x) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    static NDArray input(NDManager m, float[] bhsd, Case c, int heads, int len) {
        if (c.layout() == QkvLayout.BHSD) {
            return Reference.create(m, bhsd, c.type(), c.b(), heads, len, c.d());
        }
        float[] bshd = Reference.bhsdToBshd(bhsd, c.b(), heads, len, c.d());
        return Reference.create(m, bshd, c.type(), c.b(), len, heads, c.d());
    }
}
