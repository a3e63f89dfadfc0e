package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The {@code flash} backend through {@code Attention.forward} / {@code forwardVarlen} on fp16 CUDA NDArrays of DJL's
 * PyTorch engine, against the float64 reference with the flash error budget ({@link NdArrayAttention}): every
 * option set of ops' {@code OptionSets} in bhsd and bshd, GQA 1/4/8, odd lengths with Lq != Lk, head dims
 * 64/128/256; varlen with empty sequences; and NaN in keys or values that no query sees, which must change nothing.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class FlashNdArrayGpuTest {

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);

    /** Every option set in both layouts, over shapes cycling through lengths, GQA ratios and head dims. */
    static Stream<NdArrayAttention.Dense> denseCases() {
        int[][] shapes = { // B, Hq, Hkv, Lq, Lk, D
            {2, 8, 2, 17, 113, 128}, {1, 8, 8, 113, 113, 64}, {2, 8, 1, 113, 17, 64}, {1, 4, 2, 1, 300, 128},
            {1, 8, 2, 300, 301, 256}};
        List<NdArrayAttention.Dense> cases = new ArrayList<>();
        int n = 0;
        for (String option : OptionSets.OPTIONS) {
            for (QkvLayout layout : QkvLayout.values()) {
                int[] s = shapes[n++ % shapes.length];
                cases.add(new NdArrayAttention.Dense(option, s[0], s[1], s[2], s[3], s[4], s[5], layout));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("denseCases")
    void dense(NdArrayAttention.Dense c) {
        NdArrayAttention.runDense(MANAGERS.gpu(), c, "flash", Seeds.next());
    }

    static Stream<NdArrayAttention.Varlen> varlenCases() {
        return Stream.of(
                new NdArrayAttention.Varlen("causal", 8, 2, 128, new int[] {17, 0, 113}, new int[] {17, 0, 113}),
                new NdArrayAttention.Varlen("all", 8, 1, 64, new int[] {1, 113, 17, 0}, new int[] {1, 113, 300, 4}),
                new NdArrayAttention.Varlen("none", 4, 4, 256, new int[] {17, 5, 113}, new int[] {30, 9, 60}),
                new NdArrayAttention.Varlen("scale+lse-only", 8, 2, 64, new int[] {33, 1}, new int[] {33, 200}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("varlenCases")
    void varlen(NdArrayAttention.Varlen c) {
        NdArrayAttention.runVarlen(MANAGERS.gpu(), c, "flash", Seeds.next());
    }

    /** Cases whose mask hides some keys from every query: whole key tiles and parts of a visited tile. */
    static Stream<NdArrayAttention.Dense> poisonCases() {
        return Stream.of(
                new NdArrayAttention.Dense("window", 1, 8, 2, 17, 300, 128, QkvLayout.BHSD),
                new NdArrayAttention.Dense("causal+window+sinks", 2, 4, 1, 33, 200, 64, QkvLayout.BSHD),
                new NdArrayAttention.Dense("all", 1, 8, 8, 5, 129, 64, QkvLayout.BHSD));
    }

    @ParameterizedTest(name = "NaN keys: {0}")
    @MethodSource("poisonCases")
    void hiddenNaNKeysChangeNothing(NdArrayAttention.Dense c) {
        NdArrayAttention.runPoisoned(MANAGERS.gpu(), c, "flash", Seeds.next(), false);
    }

    @ParameterizedTest(name = "NaN values: {0}")
    @MethodSource("poisonCases")
    void hiddenNaNValuesChangeNothing(NdArrayAttention.Dense c) {
        NdArrayAttention.runPoisoned(MANAGERS.gpu(), c, "flash", Seeds.next(), true);
    }

    @Test
    void autoPicksFlashForContiguousFp16CudaArrays() {
        try (NDManager m = MANAGERS.gpu().newSubManager()) {
            NDArray q = m.zeros(new Shape(1, 8, 17, 128), DataType.FLOAT16);
            NDArray kv = m.zeros(new Shape(1, 2, 33, 128), DataType.FLOAT16);
            AttentionProblem p = AttentionProblem.builder(q, kv, kv, AttentionSpec.builder().optCausal(true).build())
                    .build();
            assertEquals("flash", AttentionBackends.select("auto", p).getName(),
                    "auto on fp16 [1, 8, 17, 128] / [1, 2, 33, 128] CUDA arrays");
        }
    }
}
