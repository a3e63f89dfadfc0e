package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
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

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        if (!DjlGpu.available()) {
            return; // each test reports the skip and its reason
        }
        manager = NDManager.newBaseManager(Device.gpu());
    }

    @BeforeEach
    void requireGpu() {
        DjlGpu.assumeAllKernels();
    }

    @AfterAll
    static void tearDown() {
        if (manager != null) {
            manager.close();
        }
    }

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
        NdArrayAttention.runPaged(manager, c, "cuda", Seeds.next());
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
        NdArrayAttention.runPaged(manager, c, "cuda", Seeds.next());
    }
}
