package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.KernelLauncher;
import org.flashdjl.ops.cuda.KernelStruct;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The GPU suite's cases (short ones) on the CPU through {@link KernelEmulator}, behind the launcher seam of
 * {@link FlashAttention#run}: checks, without a GPU, the Java side of every GPU test — the dispatch variant, the
 * parameter block packed for each layout (v laid out unlike k included), the offsets and ALiBi slopes placed
 * through the call's arguments, NaN poisoning and guards, the references and the error budget — so a GPU failure
 * points at the kernels. The last tests show that the check fails when the launched parameters are wrong.
 */
class GpuCheckEmulatedTest {

    static Stream<GpuCheck.Dense> shortDenseCases() {
        return Stream.of(FlashAttentionGpuTest.denseCases(), FlashAttentionGpuTest.otherHeadDims(),
                FlashAttentionGpuTest.emptyKeys(), FlashAttentionGpuTest.valueLayouts(),
                FlashAttentionGpuTest.positionedBlocks(), FlashAttentionGpuTest.softcapOnlyCases()).flatMap(s -> s)
                .filter(c -> c.lq() < 1000 && c.lk() < 1000);
    }

    static Stream<GpuCheck.Varlen> varlenCases() {
        return Stream.concat(FlashAttentionGpuTest.varlenCases(), FlashAttentionGpuTest.paddedValueCases());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shortDenseCases")
    void dense(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.EMULATOR, c);
    }

    /** The packed launches (grid over key/value heads, Lq x G rows) as the emulated sm90 device receives them. */
    @ParameterizedTest(name = "packed: {0}")
    @MethodSource("org.flashdjl.tests.gpu.FlashAttentionGpuTest#packedCases")
    void packedGqa(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.EMULATOR, c, true);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("varlenCases")
    void varlen(GpuCheck.Varlen c) {
        GpuCheck.runVarlen(TestMemory.EMULATOR, c);
    }

    /** The emulator behind a launcher that changes the kernel or the parameters it is handed. */
    private static TestMemory emulatorWith(java.util.function.UnaryOperator<String> kernel,
            Consumer<KernelStruct> params) {
        KernelLauncher launcher = new KernelLauncher() {
            @Override
            public int computeCapability(int device) {
                return KernelEmulator.INSTANCE.computeCapability(device);
            }

            @Override
            public void launch(int device, FlashDispatch.KernelRef ref, long rows, int gridY, int gridZ,
                    byte[] parameters) {
                KernelStruct p = FlashAttention.LAYOUT.read(parameters);
                params.accept(p);
                KernelEmulator.INSTANCE.launch(device, new FlashDispatch.KernelRef(ref.module(),
                        kernel.apply(ref.name())), rows, gridY, gridZ, p.toBytes());
            }

            @Override
            public void synchronize(int device, String what) {}
        };
        return new TestMemory() {
            @Override
            public Buf allocate(long bytes) {
                return TestMemory.EMULATOR.allocate(bytes);
            }

            @Override
            public void launch(FlashAttention call) {
                KernelEmulator.run(call, launcher);
            }
        };
    }

    @Test
    void aWrongDispatchFailsTheBudget() {
        // A kernel that ignores the window (what "plain" would do) must fail the check.
        GpuCheck.Dense c = new GpuCheck.Dense(DeviceDataType.FP16, "window", 1, 4, 4, 113, 113, 64,
                GpuCheck.Mode.BHSD, true);
        AssertionError e = assertThrows(AssertionError.class, () -> GpuCheck.runDense(emulatorWith(
                name -> name.replaceAll("_(causal|general)$", "_plain"), p -> {}), c));
        assertTrue(e.getMessage().contains("exceeds both the flash budget"), e.getMessage());
    }

    @Test
    void aKernelThatIgnoresTheSoftcapFails() {
        // The causal_softcap kernel (Hopper hd 64 / 128, or the general one elsewhere) and the general kernel of
        // softcap alone launched as the causal / plain kernel (softcap ignored) must fail the check: the cases' scores
        // lie past their cap of 0.25.
        assertSoftcapIgnoredFails(new GpuCheck.Dense(DeviceDataType.FP16, "causal+softcap-low", 1, 4, 2, 113, 113, 128,
                GpuCheck.Mode.BSHD, true), "_(causal_softcap|general)$", "_causal");
        assertSoftcapIgnoredFails(new GpuCheck.Dense(DeviceDataType.BF16, "softcap-low", 1, 4, 4, 113, 200, 64,
                GpuCheck.Mode.BHSD, true), "_general$", "_plain");
    }

    /** Runs {@code c} with every kernel name matching {@code from} launched as {@code to}: the check must fail. */
    private static void assertSoftcapIgnoredFails(GpuCheck.Dense c, String from, String to) {
        AssertionError e = assertThrows(AssertionError.class,
                () -> GpuCheck.runDense(emulatorWith(name -> name.replaceAll(from, to), p -> {}), c));
        assertTrue(e.getMessage().contains("exceeds both the flash budget") || e.getMessage().contains("lse"),
                e.getMessage());
    }

    @Test
    void queryOffsetsInPlaceOfKeyOffsetsFail() {
        GpuCheck.Varlen c = new GpuCheck.Varlen(DeviceDataType.FP16, "none", 4, 4, 256, new int[] {17, 0, 113},
                new int[] {30, 9, 60});
        assertThrows(AssertionError.class, () -> GpuCheck.runVarlen(emulatorWith(n -> n,
                p -> p.set("cu_seqlens_q", p.get("cu_seqlens_k").longValue())), c));
    }

    @Test
    void aMissingAlibiUploadFails() {
        GpuCheck.Dense c = new GpuCheck.Dense(DeviceDataType.FP16, "alibi", 1, 4, 4, 17, 113, 64,
                GpuCheck.Mode.BHSD, true);
        AssertionError e = assertThrows(AssertionError.class, () -> GpuCheck.runDense(emulatorWith(n -> n,
                p -> p.set("alibi_slopes", 0)), c));
        assertTrue(e.getMessage().contains("exceeds both the flash budget") || e.getMessage().contains("lse"),
                e.getMessage());
    }

    @Test
    void keyStridesForValueFail() {
        Consumer<KernelStruct> vLikeK = p -> {
            for (String axis : new String[] {"batch", "head", "row"}) {
                p.set("v_" + axis + "_stride", p.get("k_" + axis + "_stride").longValue());
            }
        };
        GpuCheck.Dense dense = new GpuCheck.Dense(DeviceDataType.FP16, "causal", 2, 8, 2, 113, 113, 64,
                GpuCheck.Mode.BHSD_V_BSHD, true);
        assertThrows(AssertionError.class, () -> GpuCheck.runDense(emulatorWith(n -> n, vLikeK), dense));
        GpuCheck.Varlen varlen = new GpuCheck.Varlen(DeviceDataType.FP16, "causal", 8, 2, 128,
                new int[] {17, 0, 113}, new int[] {30, 4, 113}, true);
        assertThrows(AssertionError.class, () -> GpuCheck.runVarlen(emulatorWith(n -> n, vLikeK), varlen));
    }
}
