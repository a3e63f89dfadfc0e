package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;

import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.testing.OptionSets;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

/**
 * The NDArray attention harness of the GPU suite ({@link NdArrayAttention}) on CPU NDArrays, with the NDArray
 * backends ({@code math}, {@code online}, paged {@code gather}) in fp16: the same cases and checks the GPU tests run
 * with {@code flash} and {@code cuda}, so a GPU failure points at the GPU path, not at the harness.
 */
@ExtendWith(Seeds.class)
class NdArrayAttentionTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    static Stream<NdArrayAttention.Dense> denseCases() {
        return Stream.of(
                new NdArrayAttention.Dense("causal", 2, 8, 2, 17, 33, 64, QkvLayout.BHSD),
                new NdArrayAttention.Dense("all", 1, 4, 4, 17, 40, 32, QkvLayout.BSHD),
                new NdArrayAttention.Dense("scale+lse-only", 1, 8, 1, 9, 5, 32, QkvLayout.BSHD),
                new NdArrayAttention.Dense("window-right-only", 1, 4, 2, 1, 40, 64, QkvLayout.BHSD));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("denseCases")
    void denseWithMathAndOnline(NdArrayAttention.Dense c) {
        NdArrayAttention.runDense(manager, c, "math", Seeds.next());
        NdArrayAttention.runDense(manager, c, "online", Seeds.next());
    }

    @Test
    void varlenWithOnline() {
        NdArrayAttention.runVarlen(manager, new NdArrayAttention.Varlen("alibi", 4, 2, 32, new int[] {5, 0, 17},
                new int[] {9, 3, 17}), "online", Seeds.next());
    }

    @Test
    void hiddenNaNChangesNothingInTheNdArrayBackends() {
        NdArrayAttention.Dense c = new NdArrayAttention.Dense("causal+window+sinks", 1, 4, 2, 9, 40, 32,
                QkvLayout.BSHD);
        for (String backend : new String[] {"math", "online"}) {
            assertTrue(NdArrayAttention.runPoisoned(manager, c, backend, Seeds.next(), false) > 0);
            assertTrue(NdArrayAttention.runPoisoned(manager, c, backend, Seeds.next(), true) > 0);
        }
    }

    @Test
    void poisoningNeedsAKeyHiddenFromEveryQuery() {
        // causal, bottom-right: the last query sees every key
        NdArrayAttention.Dense c = new NdArrayAttention.Dense("causal", 1, 2, 2, 5, 9, 32, QkvLayout.BHSD);
        AssertionError e = assertThrows(AssertionError.class,
                () -> NdArrayAttention.runPoisoned(manager, c, "math", Seeds.next(), true));
        assertTrue(e.getMessage().contains("hides no key"), e.getMessage());
    }

    @Test
    void hiddenKeysFollowTheMaskRule() {
        // window (5, 3) of OptionSets, Lq 4 over Lk 20: query positions 16..19 see keys 11..20 (clipped at 19)
        Reference.Options ref = new Reference.Options();
        OptionSets.spec("window", 2, ref, new Random(1));
        boolean[] hidden = NdArrayAttention.hiddenFromEveryQuery(ref, 4, 20);
        for (int j = 0; j < 20; j++) {
            assertEquals(j < 11, hidden[j], "key " + j);
        }
        // causal + window 7 + 3 sinks, Lq 2 over Lk 20: positions 18, 19 see the sinks 0..2 and keys 11..19
        Reference.Options sinks = new Reference.Options();
        OptionSets.spec("causal+window+sinks", 2, sinks, new Random(1));
        boolean[] h2 = NdArrayAttention.hiddenFromEveryQuery(sinks, 2, 20);
        boolean[] expected = new boolean[20];
        for (int j = 3; j < 11; j++) {
            expected[j] = true;
        }
        assertArrayEquals(expected, h2);
    }

    static Stream<NdArrayAttention.Paged> pagedCases() {
        return Stream.of(
                new NdArrayAttention.Paged("all", 8, 2, 64, 16, new int[] {1, 17, 40}, null),
                new NdArrayAttention.Paged("softcap+causal", 4, 4, 32, 1, new int[] {9, 20}, new int[] {9, 4}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pagedCases")
    void pagedWithGather(NdArrayAttention.Paged c) {
        NdArrayAttention.runPaged(manager, c, "gather", Seeds.next());
    }
}
