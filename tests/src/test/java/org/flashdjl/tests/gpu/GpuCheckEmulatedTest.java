package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

/**
 * The GPU suite's cases (short ones) on the CPU through {@link KernelEmulator}: checks, without a GPU, the Java
 * side of every GPU test — parameter packing for each layout and varlen, the dispatch variant, NaN poisoning and
 * guards, the references and the error budget — so a GPU failure points at the kernels.
 */
class GpuCheckEmulatedTest {

    static Stream<GpuCheck.Dense> shortDenseCases() {
        return Stream.concat(Stream.concat(FlashAttentionGpuTest.denseCases(), FlashAttentionGpuTest.otherHeadDims()),
                FlashAttentionGpuTest.emptyKeys()).filter(c -> c.lq() < 1000 && c.lk() < 1000);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shortDenseCases")
    void dense(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.EMULATOR, c);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.flashdjl.tests.gpu.FlashAttentionGpuTest#varlenCases")
    void varlen(GpuCheck.Varlen c) {
        GpuCheck.runVarlen(TestMemory.EMULATOR, c);
    }

    @Test
    void aWrongOutputFailsTheBudget() {
        // A kernel that ignores the window (what "plain" would do) must fail the check.
        GpuCheck.Dense c = new GpuCheck.Dense(DeviceDataType.FP16, "window", 1, 4, 4, 113, 113, 64,
                GpuCheck.Mode.BHSD, true);
        AssertionError e = assertThrows(AssertionError.class, () -> GpuCheck.runDense(new TestMemory() {
            @Override
            public Buf allocate(long bytes) {
                return TestMemory.EMULATOR.allocate(bytes);
            }

            @Override
            public void launch(org.flashdjl.ops.cuda.FlashAttention call,
                    org.flashdjl.ops.attention.AttentionSpec spec, DeviceDataType type, int[] cuQ, int[] cuK) {
                KernelEmulator.run(call, org.flashdjl.ops.attention.AttentionSpec.builder().build(), type, cuQ, cuK,
                        true);
            }
        }, c));
        assertTrue(e.getMessage().contains("exceeds both the flash budget"), e.getMessage());
    }
}
