package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.junit.jupiter.api.Test;

/** The flash dispatch table: variants, names and the messages for unsupported combinations. */
class FlashDispatchTest {

    /**
     * The kernel a Hopper key maps to: {@code flash_fwd_sm90_<sm90>} when the Hopper fatbin is built (the build
     * machine may lack nvcc), else the mma.sync kernel {@code flash_fwd_<fallback>}.
     */
    private static FlashDispatch.KernelRef hopperOr(String sm90, String fallback) {
        return KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null
                ? new FlashDispatch.KernelRef(KernelModule.FLASH_FWD_SM90, "flash_fwd_sm90_" + sm90)
                : new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_" + fallback);
    }

    @Test
    void variantFollowsTheSpec() {
        assertEquals(FlashDispatch.Variant.PLAIN, FlashDispatch.Variant.of(AttentionSpec.builder().build()));
        assertEquals(FlashDispatch.Variant.POSITIONED, FlashDispatch.Variant.of(AttentionSpec.builder().build(), true));
        assertEquals(FlashDispatch.Variant.POSITIONED, FlashDispatch.Variant.of(AttentionSpec.builder().optCausal(true)
                .build(), true), "a block whose positions matter needs the positioned kernel");
        assertEquals(FlashDispatch.Variant.PLAIN,
                FlashDispatch.Variant.of(AttentionSpec.builder().optSinkTokens(4).optScale(0.3f).build()));
        assertEquals(FlashDispatch.Variant.CAUSAL,
                FlashDispatch.Variant.of(AttentionSpec.builder().optCausal(true).optReturnLse(true).build()));
        assertEquals(FlashDispatch.Variant.GENERAL,
                FlashDispatch.Variant.of(AttentionSpec.builder().optCausal(true).optWindowBounds(16, -1).build()));
        assertEquals(FlashDispatch.Variant.GENERAL,
                FlashDispatch.Variant.of(AttentionSpec.builder().optWindowBounds(-1, 0).build()));
        assertEquals(FlashDispatch.Variant.GENERAL,
                FlashDispatch.Variant.of(AttentionSpec.builder().optSoftcap(30).build()),
                "softcap without the causal mask runs the general kernel");
        assertEquals(FlashDispatch.Variant.CAUSAL_SOFTCAP,
                FlashDispatch.Variant.of(AttentionSpec.builder().optCausal(true).optSoftcap(30).build()));
        assertEquals(FlashDispatch.Variant.CAUSAL_SOFTCAP, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optSoftcap(30).optSinkTokens(4).build()),
                "sinks without a left window hide nothing");
        assertEquals(FlashDispatch.Variant.GENERAL, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optSoftcap(30).optAlibiSlopes(new float[] {0.5f}).build()));
        assertEquals(FlashDispatch.Variant.GENERAL, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optSoftcap(30).optWindowBounds(64, -1).build()),
                "softcap with a window needs the general kernel");
        assertEquals(FlashDispatch.Variant.GENERAL,
                FlashDispatch.Variant.of(AttentionSpec.builder().optAlibiSlopes(new float[] {0.5f}).build()));
        float[] slopes = {0.5f, 0.25f};
        assertEquals(FlashDispatch.Variant.CAUSAL_ALIBI, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optAlibiSlopes(slopes).optReturnLse(true).build()));
        assertEquals(FlashDispatch.Variant.GENERAL, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optAlibiSlopes(slopes).optSoftcap(30).build()),
                "softcap needs the general kernel");
        assertEquals(FlashDispatch.Variant.GENERAL, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optAlibiSlopes(slopes).optWindowBounds(64, -1).build()),
                "a window needs the general kernel");
        assertEquals(FlashDispatch.Variant.POSITIONED, FlashDispatch.Variant.of(
                AttentionSpec.builder().optCausal(true).optAlibiSlopes(slopes).build(), true));
    }

    @Test
    void causalAlibiRunsItsOwnKernelOnlyOnHopperAtHd64And128() {
        AttentionSpec causalAlibi = AttentionSpec.builder().optCausal(true).optAlibiSlopes(new float[] {0.5f}).build();
        for (int d : new int[] {64, 128}) {
            assertEquals(hopperOr("bf16_hd" + d + "_causal_alibi", "bf16_hd" + d + "_general"),
                    FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.BF16, d, causalAlibi)));
        }
        assertEquals(hopperOr("fp16_hd256_general", "fp16_hd256_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 256, causalAlibi)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd128_general"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.FP16, 128, causalAlibi)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd96_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 96, causalAlibi)));
    }

    @Test
    void causalSoftcapRunsItsOwnKernelsOnlyOnHopperAtHd64And128() {
        AttentionSpec causalSoftcap = AttentionSpec.builder().optCausal(true).optSoftcap(50).build();
        AttentionSpec softcap = AttentionSpec.builder().optSoftcap(50).build();
        for (int d : new int[] {64, 128}) {
            assertEquals(hopperOr("fp16_hd" + d + "_causal_softcap", "fp16_hd" + d + "_general"),
                    FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, d, causalSoftcap)));
            assertEquals(hopperOr("bf16_hd" + d + "_general", "bf16_hd" + d + "_general"),
                    FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.BF16, d, softcap)));
        }
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd64_general"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.FP16, 64, softcap)));
        assertEquals(hopperOr("bf16_hd256_general", "bf16_hd256_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.BF16, 256, causalSoftcap)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_bf16_hd128_general"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.BF16, 128, causalSoftcap)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd32_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 32, causalSoftcap)));
    }

    @Test
    void kernelNames() {
        AttentionSpec causal = AttentionSpec.builder().optCausal(true).build();
        boolean sm90Built = KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null;
        FlashDispatch.KernelRef hopper = FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 128, causal));
        assertEquals(sm90Built ? "flash_fwd_sm90_fp16_hd128_causal" : "flash_fwd_fp16_hd128_causal", hopper.name());
        assertEquals(sm90Built ? KernelModule.FLASH_FWD_SM90 : KernelModule.FLASH_FWD, hopper.module());
        // Ampere gets the mma.sync kernels; Hopper keeps them for the head dims without wgmma kernels.
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_bf16_hd64_plain"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.BF16, 64, AttentionSpec.builder().build())));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd96_causal"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 96, causal)));
        AttentionSpec windowed = AttentionSpec.builder().optCausal(true).optWindowBounds(8, 0).build();
        assertEquals(hopperOr("fp16_hd128_general", "fp16_hd128_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 128, windowed)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd128_general"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.FP16, 128, windowed)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_bf16_hd192_general"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.BF16, 192, windowed)));
        assertEquals(FlashDispatch.Arch.SM80, FlashDispatch.Arch.of(86));
        assertEquals(FlashDispatch.Arch.SM90, FlashDispatch.Arch.of(90));
        assertEquals(FlashDispatch.Arch.SM80, FlashDispatch.Arch.of(120));
        assertEquals(hopperOr("fp16_hd128_positioned", "fp16_hd128_positioned"),
                FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 128, causal, true)));
        assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD, "flash_fwd_fp16_hd64_positioned"),
                FlashDispatch.kernel(FlashDispatch.key(80, DeviceDataType.FP16, 64, causal, true)));
        // arch x dtype x head dim x variant (causal_alibi / causal_softcap mapped to the general kernel where they have
        // none), plus the packed variant on Hopper (2 dtypes x hd 64/128/256)
        assertEquals(2 * 2 * 6 * 6 + (sm90Built ? 2 * 3 : 0), FlashDispatch.entries().size());
    }

    @Test
    void packedKernelsExistOnHopperOnly() {
        boolean sm90Built = KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null;
        assertEquals(sm90Built, FlashDispatch.hasPacked(90, DeviceDataType.BF16, 64));
        assertEquals(sm90Built, FlashDispatch.hasPacked(90, DeviceDataType.BF16, 256));
        assertFalse(FlashDispatch.hasPacked(90, DeviceDataType.FP16, 96), "no Hopper kernel for hd 96");
        assertFalse(FlashDispatch.hasPacked(80, DeviceDataType.FP16, 128), "Ampere has no packed kernel");
        assertFalse(FlashDispatch.hasPacked(75, DeviceDataType.FP16, 128), "below sm80: no flash at all");
        if (sm90Built) {
            assertEquals(new FlashDispatch.KernelRef(KernelModule.FLASH_FWD_SM90, "flash_fwd_sm90_fp16_hd128_packed"),
                    FlashDispatch.kernel(new FlashDispatch.Key(FlashDispatch.Arch.SM90, DeviceDataType.FP16, 128,
                            FlashDispatch.Variant.PACKED)));
        }
    }

    @Test
    void unsupportedCombinationsNameTheSupportedValues() {
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> FlashDispatch.kernel(FlashDispatch.key(90, DeviceDataType.FP16, 80,
                        AttentionSpec.builder().build())));
        assertEquals("head dim 80 not supported by flash; supported: 32, 64, 96, 128, 192, 256", e.getMessage());
        e = assertThrows(UnsupportedOperationException.class, () -> FlashDispatch.kernel(
                FlashDispatch.key(90, DeviceDataType.FP32, 64, AttentionSpec.builder().build())));
        assertTrue(e.getMessage().contains("dtype fp32 not supported by flash; supported: fp16, bf16"),
                e.getMessage());
        e = assertThrows(UnsupportedOperationException.class, () -> FlashDispatch.Arch.of(75));
        assertTrue(e.getMessage().contains("compute capability >= 8.0; got 7.5"), e.getMessage());
        assertNull(FlashDispatch.unsupportedReason(DeviceDataType.BF16, 256));
    }
}
