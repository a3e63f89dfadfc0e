package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.CudaException;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.TensorMaps;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The flash kernels on a CUDA device through {@link FlashAttention} on JCuda memory, against the float64
 * reference: fp16 and bf16; head dims 64/128/256 (and 32/96/192 once); Lq, Lk in {1, 17, 113, 1023} with
 * Lq != Lk; GQA 1/4/8; bhsd, bshd and bhsd-through-strides; causal, window, sinks, ALiBi, softcap and scale on and
 * off; varlen with empty sequences; Lk = 0; with and without LSE. Skips with the reason where there is no GPU.
 *
 * <p>The NDArray path ({@code DeviceTensor.fromNDArray}, the {@code flash} backend's {@code forward}) cannot run
 * on the GPU machines (DJL's JNI does not match their torch); it is unit-tested on CPU tensors in the ops module.
 */
@Tag("gpu")
class FlashAttentionGpuTest {

    private static final Logger logger = LoggerFactory.getLogger(FlashAttentionGpuTest.class);

    @BeforeAll
    static void announce() {
        String why = CudaRuntime.unavailableReason();
        if (why != null) {
            logger.warn("GPU suite skipped: no CUDA device: {}", why);
            return;
        }
        if (GpuCheck.DEVICE < CudaRuntime.getDeviceCount()) {
            CudaRuntime.bind(GpuCheck.DEVICE);
            logger.info("GPU suite on {} (driver {}){}", CudaRuntime.getDeviceInfo(GpuCheck.DEVICE),
                    CudaRuntime.getDriverVersion(), GpuCheck.QUICK ? ", quick sweep" : "");
        }
    }

    @BeforeEach
    void requireGpu() {
        GpuCheck.assumeGpu(); // each test reports the skip and its reason
    }

    @AfterAll
    static void report() {
        GpuCheck.writeReport();
    }

    static Stream<GpuCheck.Dense> denseCases() {
        int[][] lengths = GpuCheck.QUICK
                ? new int[][] {{1, 1}, {17, 17}, {113, 113}, {17, 113}, {113, 17}, {1, 113}}
                : new int[][] {{1, 1}, {17, 17}, {113, 113}, {17, 113}, {113, 17}, {1, 1023}, {1023, 1023},
                    {113, 1023}, {1023, 17}};
        int[][] heads = {{4, 4}, {8, 2}, {8, 1}};
        int[] dims = {64, 128, 256};
        GpuCheck.Mode[] modes = GpuCheck.Mode.values();
        List<GpuCheck.Dense> cases = new ArrayList<>();
        int n = 0;
        for (String option : GpuCheck.OPTIONS) {
            for (DeviceDataType type : new DeviceDataType[] {DeviceDataType.FP16, DeviceDataType.BF16}) {
                for (int r = 0; r < 3; r++, n++) {
                    int[] len = lengths[(n / 3 + r) % lengths.length];
                    int[] h = heads[(n / 2) % heads.length];
                    int d = dims[n % dims.length];
                    boolean long1023 = len[0] >= 1023 || len[1] >= 1023;
                    int b = long1023 ? 1 : 1 + n % 2;
                    cases.add(new GpuCheck.Dense(type, option, b, h[0], h[1], len[0], len[1], d,
                            modes[(n / 5) % modes.length], n % 4 != 3));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("denseCases")
    void dense(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    static Stream<GpuCheck.Dense> otherHeadDims() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.FP16, "causal", 2, 4, 2, 113, 113, 32, GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "all", 1, 8, 8, 17, 113, 96, GpuCheck.Mode.BHSD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 1, 4, 1, 113, 17, 192,
                        GpuCheck.Mode.BHSD_VIEW_OF_BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal", 1, 2, 2, 200, 300, 128, GpuCheck.Mode.BSHD, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("otherHeadDims")
    void otherShapes(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    /**
     * GQA packing ({@code optPackGqa}: a key/value head's query heads as the rows of one tile, the Hopper kernels;
     * elsewhere the plain kernel): decode-like and short queries, tiles split inside a query's heads, MQA, every
     * layout, Lk = 0, both dtypes, hd 64, 128 and 256.
     */
    static Stream<GpuCheck.Dense> packedCases() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 2, 32, 8, 1, 1000, 128, GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "scale", 1, 16, 2, 17, 300, 64, GpuCheck.Mode.BHSD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 3, 12, 4, 45, 77, 256, GpuCheck.Mode.BHSD_VIEW_OF_BSHD,
                        true),
                new GpuCheck.Dense(DeviceDataType.BF16, "none", 1, 8, 1, 33, 129, 128, GpuCheck.Mode.BHSD_V_BSHD,
                        false),
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 2, 6, 2, 5, 0, 64, GpuCheck.Mode.BSHD, true));
    }

    @ParameterizedTest(name = "packed: {0}")
    @MethodSource("packedCases")
    void packedGqa(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c, true);
    }

    static Stream<GpuCheck.Dense> emptyKeys() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 2, 4, 4, 17, 0, 64, GpuCheck.Mode.BHSD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal", 1, 8, 2, 17, 0, 128, GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "all", 1, 4, 1, 1, 0, 256, GpuCheck.Mode.BHSD, true));
    }

    @ParameterizedTest(name = "Lk=0: {0}")
    @MethodSource("emptyKeys")
    void emptyKeysGiveZeroAndMinusInfinity(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    /** V laid out differently from K: a strided bshd view next to bhsd q/k (dense), padded v rows (varlen). */
    static Stream<GpuCheck.Dense> valueLayouts() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.FP16, "causal", 2, 8, 2, 113, 113, 64, GpuCheck.Mode.BHSD_V_BSHD,
                        true),
                new GpuCheck.Dense(DeviceDataType.BF16, "all", 1, 4, 4, 17, 113, 128, GpuCheck.Mode.BHSD_V_BSHD,
                        true),
                new GpuCheck.Dense(DeviceDataType.FP16, "none", 1, 8, 1, 113, 17, 256, GpuCheck.Mode.BHSD_V_BSHD,
                        false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("valueLayouts")
    void valueLaidOutUnlikeKey(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    /**
     * Blocks at global positions (ring attention, chunked prefill against a cache): windows, sinks, ALiBi and a
     * causal mask off the diagonal follow the whole sequence.
     */
    static Stream<GpuCheck.Dense> positionedBlocks() {
        return Stream.of(
                // a ring block: queries 300.. against keys 200.. (shifted causal runs on the general kernel)
                new GpuCheck.Dense(DeviceDataType.FP16, "causal", 2, 8, 2, 90, 150, 64, GpuCheck.Mode.BSHD, true,
                        300L, 200),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal+window+sinks", 1, 4, 4, 113, 113, 128,
                        GpuCheck.Mode.BHSD, true, 1000L, 900),
                new GpuCheck.Dense(DeviceDataType.FP16, "all", 1, 8, 1, 17, 113, 256, GpuCheck.Mode.BHSD_V_BSHD, true,
                        150L, 40),
                new GpuCheck.Dense(DeviceDataType.FP16, "alibi", 2, 4, 2, 64, 64, 128, GpuCheck.Mode.BHSD, true, 0L,
                        500),
                // queries before every key of the block: with causal, rows see nothing (O = 0, LSE = -inf)
                new GpuCheck.Dense(DeviceDataType.BF16, "causal", 1, 2, 2, 40, 70, 64, GpuCheck.Mode.BHSD, true, 0L,
                        1000),
                // keys at 0.. with sinks far behind the window of late queries
                new GpuCheck.Dense(DeviceDataType.FP16, "causal+window+sinks", 1, 4, 2, 64, 100, 64,
                        GpuCheck.Mode.BSHD, true, 536L, 0));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("positionedBlocks")
    void blocksAtGlobalPositions(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    static Stream<GpuCheck.Varlen> paddedValueCases() {
        return Stream.of(
                new GpuCheck.Varlen(DeviceDataType.FP16, "causal", 8, 2, 128, new int[] {17, 0, 113},
                        new int[] {30, 4, 113}, true),
                new GpuCheck.Varlen(DeviceDataType.BF16, "alibi", 4, 4, 64, new int[] {1, 40},
                        new int[] {60, 40}, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("paddedValueCases")
    void varlenValueLaidOutUnlikeKey(GpuCheck.Varlen c) {
        GpuCheck.runVarlen(TestMemory.GPU, c);
    }

    static Stream<GpuCheck.Varlen> varlenCases() {
        return Stream.of(
                new GpuCheck.Varlen(DeviceDataType.FP16, "causal", 8, 2, 128, new int[] {17, 0, 113},
                        new int[] {17, 0, 113}),
                new GpuCheck.Varlen(DeviceDataType.BF16, "all", 8, 1, 64, new int[] {17, 0, 113},
                        new int[] {17, 0, 113}),
                new GpuCheck.Varlen(DeviceDataType.FP16, "none", 4, 4, 256, new int[] {17, 0, 113},
                        new int[] {30, 9, 60}),
                new GpuCheck.Varlen(DeviceDataType.BF16, "causal+window+sinks", 4, 2, 128, new int[] {17, 5, 113},
                        new int[] {40, 0, 200}),
                new GpuCheck.Varlen(DeviceDataType.FP16, "alibi", 8, 8, 64, new int[] {1, 113, 17, 0},
                        new int[] {1, 113, 300, 4}),
                new GpuCheck.Varlen(DeviceDataType.BF16, "causal+alibi", 8, 2, 128, new int[] {300, 0, 17, 700},
                        new int[] {300, 9, 1023, 700}),
                new GpuCheck.Varlen(DeviceDataType.FP16, "causal+softcap", 8, 2, 64, new int[] {300, 0, 17, 700},
                        new int[] {300, 9, 1023, 700}));
    }

    /**
     * Causal + ALiBi on the Hopper causal_alibi kernels' persistent form: more work tiles (query blocks x heads) than
     * an H200 has SMs, so a CTA walks several, of different heads, over one key-term tile.
     */
    static Stream<GpuCheck.Dense> causalAlibiCases() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.FP16, "causal+alibi", 2, 16, 4, 1023, 1023, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal+alibi", 1, 24, 8, 700, 1023, 64,
                        GpuCheck.Mode.BHSD, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("causalAlibiCases")
    void causalAlibi(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    /**
     * Softcap with the causal mask on the Hopper causal_softcap kernels (hd 64 / 128), persistent form included (more
     * work tiles than an H200 has SMs), and alone on the general kernel, over each of softcap's walks: scores inside
     * the cap (10, 3), mostly past it (0.25), and a cap of 50 (half with the tier reference while a warp's tiles stay
     * within its tier, then the running max; bfloat16 with the cap's reference).
     */
    static Stream<GpuCheck.Dense> softcapOnlyCases() {
        return Stream.of(
                new GpuCheck.Dense(DeviceDataType.BF16, "softcap", 2, 16, 4, 1023, 1023, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "softcap-low", 1, 8, 2, 300, 517, 64,
                        GpuCheck.Mode.BHSD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "softcap-high", 1, 32, 8, 2048, 2048, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "softcap-high", 2, 8, 1, 333, 1000, 64,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "causal+softcap", 2, 16, 4, 1023, 1023, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal+softcap", 1, 24, 8, 700, 1023, 64,
                        GpuCheck.Mode.BHSD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "causal+softcap-low", 1, 8, 2, 300, 517, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal+softcap-low", 2, 4, 4, 129, 129, 64,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.FP16, "causal+softcap-high", 1, 32, 8, 2048, 2048, 128,
                        GpuCheck.Mode.BSHD, true),
                new GpuCheck.Dense(DeviceDataType.BF16, "causal+softcap-high", 2, 8, 1, 333, 1000, 128,
                        GpuCheck.Mode.BHSD, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("softcapOnlyCases")
    void softcapOnly(GpuCheck.Dense c) {
        GpuCheck.runDense(TestMemory.GPU, c);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("varlenCases")
    void varlen(GpuCheck.Varlen c) {
        GpuCheck.runVarlen(TestMemory.GPU, c);
    }

    @Test
    void everyKernelOfTheTableLoads() {
        CudaRuntime.bind(GpuCheck.DEVICE);
        FlashDispatch.Arch arch =
                FlashDispatch.Arch.of(CudaRuntime.getDeviceInfo(GpuCheck.DEVICE).computeCapability());
        List<String> missing = new ArrayList<>();
        for (Map.Entry<FlashDispatch.Key, FlashDispatch.KernelRef> e : FlashDispatch.entries().entrySet()) {
            if (e.getKey().arch() != arch) {
                continue;
            }
            try {
                KernelModule.Kernel k = KernelModule.get(e.getValue().module(), GpuCheck.DEVICE)
                        .getKernel(e.getValue().name());
                assertTrue(k.threadsPerBlock() % 32 == 0 && k.threadsPerBlock() <= 1024, k.toString());
                assertTrue(k.rowsPerBlock() > 0 && k.colsPerBlock() > 0, k.toString());
                logger.info("{} -> {}", e.getKey(), k);
            } catch (CudaException ex) {
                missing.add(e.getValue() + " (" + ex.getMessage() + ")");
            }
        }
        assertTrue(missing.isEmpty(), "kernels of the dispatch table missing from the fatbin: " + missing);
        assertNull(AttentionBackends.get("flash").unavailableReason());
    }

    /**
     * On Hopper the wgmma kernels load whole K / V tiles with TMA through tensor maps the driver encodes
     * ({@link TensorMaps}): a dense bshd call and a varlen call (keys past a full tile, sequences at row offsets)
     * must carry their maps, none refused, and still match the reference.
     */
    @Test
    void hopperCallsLoadThroughTensorMaps() {
        CudaRuntime.bind(GpuCheck.DEVICE);
        assumeTrue(CudaRuntime.getDeviceInfo(GpuCheck.DEVICE).computeCapability() == 90
                && KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null
                && !"false".equalsIgnoreCase(System.getProperty("flashdjl.flash.tma")),
                "needs a compute capability 9.0 device, the sm90 fatbin and TMA on");
        long mapped = TensorMaps.mappedLaunches();
        long refused = TensorMaps.refusedMaps();
        GpuCheck.runDense(TestMemory.GPU, new GpuCheck.Dense(DeviceDataType.FP16, "none", 2, 4, 2, 300, 1023, 128,
                GpuCheck.Mode.BSHD, true));
        GpuCheck.runVarlen(TestMemory.GPU, new GpuCheck.Varlen(DeviceDataType.BF16, "causal", 4, 2, 64,
                new int[] {17, 300}, new int[] {200, 300}));
        assertEquals(refused, TensorMaps.refusedMaps(), "tensor maps the driver refused");
        assertTrue(TensorMaps.mappedLaunches() >= mapped + 2, "both launches carry K / V maps: "
                + (TensorMaps.mappedLaunches() - mapped) + " did");
    }

    /**
     * On Hopper the plain / causal kernels of hd 64 / 128 have a persistent form that runs calls with short work per
     * head: at most one CTA per SM, each walking several of the grid's blocks (its K / V ring, Q buffers and the
     * consumers' turns carried from one to the next). Calls with more blocks than the device has SMs, dense GQA and
     * varlen with ragged and empty sequences (blocks past a sequence's end are skipped), and calls long enough for the
     * per-tile kernels must match the reference.
     */
    @Test
    void hopperPersistentKernelsWalkSeveralBlocksPerCta() {
        CudaRuntime.bind(GpuCheck.DEVICE);
        assumeTrue(CudaRuntime.getDeviceInfo(GpuCheck.DEVICE).computeCapability() == 90
                && KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null,
                "needs a compute capability 9.0 device and the sm90 fatbin");
        KernelModule sm90 = KernelModule.get(KernelModule.FLASH_FWD_SM90, GpuCheck.DEVICE);
        for (String k : List.of("fp16_hd64_plain", "fp16_hd128_plain", "bf16_hd128_causal", "bf16_hd64_causal")) {
            assertTrue(sm90.getKernel("flash_fwd_sm90_" + k).persistentBlocks() > 0, k);
            KernelModule.Kernel persistent = sm90.getKernel("flash_fwd_sm90_" + k + "_persistent");
            assertEquals(0, persistent.persistentBlocks(), persistent.toString());
        }
        for (String k : List.of("fp16_hd128_general", "fp16_hd256_causal", "fp16_hd128_packed")) {
            assertEquals(0, sm90.getKernel("flash_fwd_sm90_" + k).persistentBlocks(), k);
        }
        int sms = CudaRuntime.getDeviceInfo(GpuCheck.DEVICE).smCount();
        // 2 x 16 heads x 5 query blocks = 160 blocks
        assumeTrue(sms < 160, "the device has " + sms + " SMs: the dense call would not walk several blocks per CTA");
        GpuCheck.runDense(TestMemory.GPU, new GpuCheck.Dense(DeviceDataType.FP16, "causal", 2, 16, 4, 600, 300, 128,
                GpuCheck.Mode.BSHD, true));
        GpuCheck.runVarlen(TestMemory.GPU, new GpuCheck.Varlen(DeviceDataType.BF16, "none", 8, 2, 64,
                new int[] {700, 1, 0, 513, 129, 1000, 300, 640, 17, 256, 900, 33},
                new int[] {300, 5, 17, 513, 0, 1000, 129, 700, 1, 256, 64, 900}));
        // more query blocks per head than the kernels' persistentBlocks: the per-tile kernels (the first 3600 rows of
        // this bottom-right causal call see no key)
        GpuCheck.runDense(TestMemory.GPU, new GpuCheck.Dense(DeviceDataType.FP16, "none", 1, 2, 2, 2100, 300, 64,
                GpuCheck.Mode.BHSD, true));
        GpuCheck.runDense(TestMemory.GPU, new GpuCheck.Dense(DeviceDataType.FP16, "none", 1, 2, 2, 4200, 300, 128,
                GpuCheck.Mode.BHSD, true));
        GpuCheck.runDense(TestMemory.GPU, new GpuCheck.Dense(DeviceDataType.BF16, "causal", 1, 2, 1, 4200, 600, 128,
                GpuCheck.Mode.BSHD, true));
    }

    @Test
    void errorsNameTheCallAndTheSupportedValues() {
        CudaException oom = assertThrows(CudaException.class,
                () -> DeviceBuffer.allocate(GpuCheck.DEVICE, 1L << 50).close());
        assertTrue(oom.getMessage().contains("cuMemAlloc") && oom.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY"),
                oom.getMessage());
        try (DeviceBuffer b = DeviceBuffer.allocate(GpuCheck.DEVICE, 1 << 20)) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> FlashAttention.builder()
                            .setQuery(b.view(DeviceDataType.FP16, 1, 2, 16, 80))
                            .setKey(b.view(DeviceDataType.FP16, 1, 2, 16, 80))
                            .setValue(b.view(DeviceDataType.FP16, 1, 2, 16, 80))
                            .setOutput(b.view(DeviceDataType.FP16, 1, 2, 16, 80))
                            .setSpec(AttentionSpec.builder().build())
                            .build());
            assertEquals("head dim 80 not supported by flash; supported: 32, 64, 96, 128, 192, 256", e.getMessage());
        }
        // the context is still healthy after the refused calls
        CudaRuntime.bind(GpuCheck.DEVICE);
        CudaRuntime.synchronize("error checks");
    }
}
