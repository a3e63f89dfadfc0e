package org.flashdjl.tests.gpu;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.paged.PagedFixture;
import org.flashdjl.ops.paged.PagedPlan;
import org.flashdjl.ops.testing.Reference;

import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The paged {@code cuda} backend through {@code PagedPlan} on fp16 CUDA NDArrays of DJL's PyTorch engine, against
 * the float64 reference of each sequence's gathered keys with the flash error budget ({@link NdArrayAttention}):
 * decode plans (every option set, head dims 64/128/256, GQA 1/4/8) and prefill / append plans (first and later
 * chunks), page sizes 1 and 16, pools with NaN in every unused page and in the tail of each last page.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class PagedNdArrayGpuTest {

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);

    static Stream<NdArrayAttention.Paged> decodeCases() {
        List<NdArrayAttention.Paged> cases = new ArrayList<>();
        int n = 0;
        for (String option : OptionSets.OPTIONS) {
            cases.add(n++ % 2 == 0
                    ? new NdArrayAttention.Paged(option, 8, 2, 128, 16, new int[] {1, 17, 113, 300}, null)
                    : new NdArrayAttention.Paged(option, 16, 2, 64, 1, new int[] {5, 33, 130}, null));
        }
        cases.add(new NdArrayAttention.Paged("causal", 4, 4, 256, 16, new int[] {40, 1, 77}, null));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decodeCases")
    void decode(NdArrayAttention.Paged c) {
        NdArrayAttention.runPaged(MANAGERS.gpu(), c, "cuda", Seeds.next());
    }

    /**
     * A float32 GPU plan that states its dtype: {@code auto} runs it on {@code gather} (the fp16 kernels cannot),
     * and the result matches the float64 reference.
     */
    @Test
    void float32PlansRunOnGather() {
        long seed = Seeds.next();
        Random rnd = new Random(seed);
        int hq = 8;
        int hkv = 2;
        int d = 64;
        int[] seqLens = {5, 40};
        int[] indptr = {0, 5, 7}; // a first chunk (5 of 5) and an append (2 of 40)
        Reference.Options ref = new Reference.Options();
        AttentionSpec spec = NdArrayAttention.spec("causal", hq, d, QkvLayout.BHSD, ref, rnd);
        try (NDManager s = MANAGERS.gpu().newSubManager()) {
            PagedFixture f = PagedFixture.create(s, rnd, 16, hkv, d, seqLens, 3, DataType.FLOAT32);
            float[] q = new float[indptr[2] * hq * d]; // packed [totalQ, Hq, D]
            double[][] expected = new double[2][];
            for (int b = 0; b < 2; b++) {
                int lq = indptr[b + 1] - indptr[b];
                float[] qb = Reference.randn(rnd, lq * hq * d); // [Lq, Hq, D]
                System.arraycopy(qb, 0, q, indptr[b] * hq * d, qb.length);
                expected[b] = PagedFixture.reference(qb, f.keys[b], f.values[b], lq, seqLens[b], hq, hkv, d, ref,
                        0)[0];
            }
            try (PagedPlan plan = PagedPlan.builder(f.table).optQoIndptr(indptr).setQueryHeads(hq).setKvHeads(hkv)
                    .setHeadDim(d).optDevice(MANAGERS.gpu().getDevice()).optDataType(DataType.FLOAT32).build()) {
                Assertions.assertEquals("gather", plan.getBackend().getName(),
                        "auto's backend for a float32 GPU plan; seed " + seed);
                NDArray qa = Reference.create(s, q, DataType.FLOAT32, indptr[2], hq, d);
                float[] got = plan.forward(qa, f.kPages, f.vPages, spec).getOutput().toFloatArray();
                double worst = 0;
                for (int b = 0; b < 2; b++) {
                    for (int i = 0; i < expected[b].length; i++) {
                        worst = Math.max(worst, Math.abs(got[indptr[b] * hq * d + i] - expected[b][i]));
                    }
                }
                Assertions.assertTrue(worst < 1e-4, "float32 gather on the GPU vs float64: max abs error " + worst
                        + "; seed " + seed);
            }
        }
    }

    static Stream<NdArrayAttention.Paged> prefillCases() {
        List<NdArrayAttention.Paged> cases = new ArrayList<>();
        for (String option : new String[] {"causal", "all", "none", "alibi", "softcap+causal", "causal+window+sinks"}) {
            cases.add(new NdArrayAttention.Paged(option, 8, 2, 128, 16, new int[] {17, 113, 5, 64},
                    new int[] {17, 3, 5, 1}));
        }
        cases.add(new NdArrayAttention.Paged("causal", 4, 4, 64, 1, new int[] {9, 40}, new int[] {9, 16}));
        cases.add(new NdArrayAttention.Paged("window", 8, 1, 64, 1, new int[] {31, 2}, new int[] {7, 2}));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prefillCases")
    void prefill(NdArrayAttention.Paged c) {
        NdArrayAttention.runPaged(MANAGERS.gpu(), c, "cuda", Seeds.next());
    }
}
