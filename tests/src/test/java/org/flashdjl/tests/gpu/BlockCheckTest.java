package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;

import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.stream.Stream;

/**
 * The block harness of the GPU suite ({@link BlockCheck}) on the CPU: every case of {@link BlocksGpuTest} runs with
 * its weights copied into fresh blocks and converted to fp16 on the CPU (the CPU fp16 run the GPU budget comes
 * from), the NativeAttentionBlock check runs with the CPU as candidate, and a candidate that is off fails.
 */
@ExtendWith(Seeds.class)
class BlockCheckTest {

    private static NDManager cpu;

    @BeforeAll
    static void setUp() {
        cpu = NDManager.newBaseManager(Device.cpu());
    }

    @AfterAll
    static void tearDown() {
        cpu.close();
    }

    static Stream<BlockCheck.Case<?>> cases() {
        return Stream.concat(BlocksGpuTest.dropIns(), BlocksGpuTest.decoders());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void fp16CopiesRunOnTheCpu(BlockCheck.Case<?> c) {
        BlockCheck.compare(c, cpu, cpu, DataType.FLOAT16, Seeds.next());
    }

    @ParameterizedTest(name = "NativeAttentionBlock {0}")
    @ValueSource(strings = {"bhsd", "bshd"})
    void nativeAttentionBlockOnTheCpuInFp16(String layout) {
        BlockCheck.nativeAttention(cpu, cpu, layout, Seeds.next());
    }

    @Test
    void aCandidateThatIsOffFails() {
        BlockCheck.Case<?> base = BlocksGpuTest.decoders().findFirst().orElseThrow();
        try (NDManager candidate = NDManager.newBaseManager(Device.cpu())) {
            AssertionError e = assertThrows(AssertionError.class, () -> BlockCheck.compare(offOn(base, candidate), cpu,
                    candidate, DataType.FLOAT32, Seeds.next()));
            assertTrue(e.getMessage().contains("vs the same weights on the CPU in fp32"), e.getMessage());
        }
    }

    // The same case, its outputs shifted by 0.01 when run under the candidate manager.
    private static <B extends Block> BlockCheck.Case<B> offOn(BlockCheck.Case<B> c, NDManager candidate) {
        return new BlockCheck.Case<>(c.name() + " (off by 0.01)", c.factory(), c.inputShape(), (blk, m, t, seed) -> {
            float[] out = c.runner().run(blk, m, t, seed);
            if (m.getParentManager() == candidate) {
                for (int i = 0; i < out.length; i++) {
                    out[i] += 0.01f;
                }
            }
            return out;
        });
    }
}
