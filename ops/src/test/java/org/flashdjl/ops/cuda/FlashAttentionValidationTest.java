package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.junit.jupiter.api.Test;

/** {@link FlashAttention.Builder#build()}'s checks and parameter packing; no GPU needed (nothing is launched). */
class FlashAttentionValidationTest {

    private static final long BASE = 0x7f0000000000L;

    private static DeviceTensor tensor(DeviceDataType type, long offset, long... shape) {
        return DeviceTensor.fromDevicePointer(BASE + offset, shape, DeviceTensor.contiguousStrides(shape), type, 0);
    }

    private static FlashAttention.Builder dense(DeviceDataType type, int d, AttentionSpec spec) {
        return FlashAttention.builder()
                .setQuery(tensor(type, 0, 2, 8, 33, d))
                .setKey(tensor(type, 1 << 24, 2, 2, 17, d))
                .setValue(tensor(type, 2 << 24, 2, 2, 17, d))
                .setOutput(tensor(type, 3 << 24, 2, 8, 33, d))
                .setSpec(spec);
    }

    private static String message(Class<? extends RuntimeException> type, FlashAttention.Builder b) {
        return assertThrows(type, b::build).getMessage();
    }

    @Test
    void packsDenseBhsd() {
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optWindowBounds(8, 0).optSinkTokens(2)
                .optSoftcap(20).build();
        FlashAttention call = dense(DeviceDataType.FP16, 64, spec)
                .optLse(tensor(DeviceDataType.FP32, 4 << 24, 2, 8, 33)).build();
        KernelStruct p = call.getParams();
        assertEquals(BASE, p.get("q"));
        assertEquals(BASE + (4L << 24), p.get("lse"));
        assertEquals(8L * 33 * 64, p.get("q_batch_stride"));
        assertEquals(33L * 64, p.get("q_head_stride"));
        assertEquals(64L, p.get("q_row_stride"));
        assertEquals(2L * 17 * 64, p.get("k_batch_stride"));
        assertEquals(8L * 33, p.get("lse_batch_stride"));
        assertEquals(33L, p.get("lse_head_stride"));
        assertEquals(1L, p.get("lse_row_stride"));
        assertEquals(2, p.get("batch"));
        assertEquals(8, p.get("hq"));
        assertEquals(2, p.get("hkv"));
        assertEquals(33, p.get("lq"));
        assertEquals(17, p.get("lk"));
        assertEquals(1, p.get("mask.causal"));
        assertEquals(8, p.get("mask.window_left"));
        assertEquals(0, p.get("mask.window_right"));
        assertEquals(2, p.get("mask.sink_tokens"));
        assertEquals(0.125f, p.get("mask.scale"));
        assertEquals(20f, p.get("mask.softcap"));
        assertEquals(0L, p.get("alibi_slopes"));
        assertEquals("flash_fwd_fp16_hd64_general", call.kernelName(80));
        assertEquals(KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null
                ? "flash_fwd_sm90_fp16_hd64_general" : "flash_fwd_fp16_hd64_general", call.kernelName(90));
    }

    @Test
    void gqaPackingTakesPlainDenseCallsOnly() {
        FlashAttention.Builder call = FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.FP16, 0, 2, 8, 5, 64))
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 2, 2, 40, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 2, 2, 40, 64))
                .setOutput(tensor(DeviceDataType.FP16, 3 << 24, 2, 8, 5, 64))
                .optPackGqa(true);
        FlashAttention plain = call.setSpec(AttentionSpec.builder().build()).build();
        String packed = KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null
                ? "flash_fwd_sm90_fp16_hd64_packed" : "flash_fwd_fp16_hd64_plain";
        assertEquals(packed, plain.kernelName(90), "Hopper runs the packed kernel where it is built");
        assertEquals("flash_fwd_fp16_hd64_plain", plain.kernelName(80), "elsewhere the plain kernel");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> call.setSpec(AttentionSpec.builder().optCausal(true).build()).build());
        assertTrue(e.getMessage().contains("GQA packing (optPackGqa) needs a dense call without mask or options")
                && e.getMessage().contains("the causal variant"), e.getMessage());
    }

    @Test
    void packsBshdAndPermutedViews() {
        AttentionSpec bshd = AttentionSpec.builder().optLayout(QkvLayout.BSHD).build();
        FlashAttention call = FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.BF16, 0, 2, 33, 8, 128))
                .setKey(tensor(DeviceDataType.BF16, 1 << 24, 2, 17, 4, 128))
                .setValue(tensor(DeviceDataType.BF16, 2 << 24, 2, 17, 4, 128))
                .setOutput(tensor(DeviceDataType.BF16, 3 << 24, 2, 33, 8, 128))
                .setSpec(bshd).build();
        KernelStruct p = call.getParams();
        assertEquals(33L * 8 * 128, p.get("q_batch_stride"));
        assertEquals(128L, p.get("q_head_stride"));
        assertEquals(8L * 128, p.get("q_row_stride"));
        assertEquals(33, p.get("lq"));
        assertEquals(4, p.get("hkv"));
        assertEquals("flash_fwd_bf16_hd128_plain", call.kernelName(80));
        // The same memory as a bhsd view through strides gives the same parameters.
        FlashAttention viaStrides = FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.BF16, 0, 2, 33, 8, 128).permute(0, 2, 1, 3))
                .setKey(tensor(DeviceDataType.BF16, 1 << 24, 2, 17, 4, 128).permute(0, 2, 1, 3))
                .setValue(tensor(DeviceDataType.BF16, 2 << 24, 2, 17, 4, 128).permute(0, 2, 1, 3))
                .setOutput(tensor(DeviceDataType.BF16, 3 << 24, 2, 33, 8, 128).permute(0, 2, 1, 3))
                .setSpec(AttentionSpec.builder().build()).build();
        assertEquals(p.toString(), viaStrides.getParams().toString());
    }

    @Test
    void packsVarlen() {
        int[] cuQ = {0, 17, 17, 130};
        int[] cuK = {0, 20, 20, 140};
        FlashAttention call = FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.FP16, 0, 130, 8, 64))
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 140, 1, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 140, 1, 64))
                .setOutput(tensor(DeviceDataType.FP16, 3 << 24, 130, 8, 64))
                .optLse(tensor(DeviceDataType.FP32, 4 << 24, 130, 8))
                .optVarlen(cuQ, cuK)
                .setSpec(AttentionSpec.builder().optCausal(true).build()).build();
        KernelStruct p = call.getParams();
        assertEquals(3, p.get("batch"));
        assertEquals(113, p.get("lq"));
        assertEquals(120, p.get("lk"));
        assertEquals(0L, p.get("q_batch_stride"));
        assertEquals(64L, p.get("q_head_stride"));
        assertEquals(8L * 64, p.get("q_row_stride"));
        assertEquals(0L, p.get("lse_batch_stride"));
        assertEquals(1L, p.get("lse_head_stride"));
        assertEquals(8L, p.get("lse_row_stride"));

        String m = message(IllegalArgumentException.class, FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.FP16, 0, 130, 8, 64))
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 140, 1, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 140, 1, 64))
                .setOutput(tensor(DeviceDataType.FP16, 3 << 24, 130, 8, 64))
                .optVarlen(new int[] {0, 17, 16, 130}, cuK)
                .setSpec(AttentionSpec.builder().build()));
        assertTrue(m.contains("cuSeqlensQ must be non-decreasing"), m);
    }

    @Test
    void refusesBadInputsBeforeLaunch() {
        AttentionSpec spec = AttentionSpec.builder().build();
        String m = message(UnsupportedOperationException.class, dense(DeviceDataType.FP16, 80, spec));
        assertEquals("head dim 80 not supported by flash; supported: 32, 64, 96, 128, 192, 256", m);

        m = message(UnsupportedOperationException.class, dense(DeviceDataType.FP32, 64, spec));
        assertTrue(m.contains("dtype fp32 not supported by flash; supported: fp16, bf16"), m);

        m = message(IllegalArgumentException.class,
                dense(DeviceDataType.FP16, 64, spec).setValue(tensor(DeviceDataType.BF16, 2 << 24, 2, 2, 17, 64)));
        assertTrue(m.contains("value has dtype bf16 but query has fp16"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setKey(DeviceTensor.fromDevicePointer(BASE, new long[] {2, 2, 17, 64},
                        DeviceTensor.contiguousStrides(2, 2, 17, 64), DeviceDataType.FP16, 1)));
        assertTrue(m.contains("key is on cuda:1 but query is on cuda:0"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 2, 2, 17, 32)));
        assertTrue(m.contains("value shape [2, 2, 17, 32] must equal key shape [2, 2, 17, 64]"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 2, 3, 17, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 2, 3, 17, 64)));
        assertTrue(m.contains("query heads (8) must be a positive multiple of key/value heads (3)"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(tensor(DeviceDataType.FP16, 2, 2, 8, 33, 64)));
        assertTrue(m.contains("not 16-byte aligned"), m);

        long[] shape = {2, 8, 33, 64};
        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(DeviceTensor.fromDevicePointer(BASE, shape, new long[] {8 * 33 * 64, 64, 1, 33 * 8},
                        DeviceDataType.FP16, 0)));
        assertTrue(m.contains("head-dim (last axis) stride 1"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(DeviceTensor.fromDevicePointer(BASE, shape, new long[] {8 * 33 * 68, 33 * 68, 68 + 2, 1},
                        DeviceDataType.FP16, 0)));
        assertTrue(m.contains("not a multiple of 8 elements"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .optLse(tensor(DeviceDataType.FP32, 4 << 24, 2, 33, 8)));
        assertTrue(m.contains("lse shape [2, 33, 8] must be [2, 8, 33], the output's shape without its head dim"
                + " ([B, Hq, Lq])"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64,
                AttentionSpec.builder().optAlibiSlopes(new float[] {1, 2}).build()));
        assertTrue(m.contains("alibiSlopes has 2 slopes; it needs one per query head (8)"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(tensor(DeviceDataType.FP16, 0, 2, 33, 64))
                .setOutput(tensor(DeviceDataType.FP16, 0, 2, 33, 64)));
        assertTrue(m.contains("query must have rank 4 [batch, heads, seq, dim]"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(tensor(DeviceDataType.FP16, 0, 70000, 8, 1, 64))
                .setOutput(tensor(DeviceDataType.FP16, 0, 70000, 8, 1, 64))
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 70000, 2, 1, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 70000, 2, 1, 64)));
        assertTrue(m.contains("batch = 70000 exceeds the CUDA grid z limit 65535"), m);

        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, spec)
                .setQuery(DeviceTensor.fromDevicePointer(BASE, new long[] {2, 8, 33, 64},
                        DeviceTensor.contiguousStrides(2, 8, 33, 64), DeviceDataType.FP16, -1)));
        assertTrue(m.contains("query is host memory"), m);
    }
    @Test
    void packsPositionsAndSendsShiftedCausalBlocksToTheGeneralKernel() {
        // 33 queries against 17 keys: bottom-right puts query 0 at 17 - 33 = -16
        FlashAttention aligned = dense(DeviceDataType.FP16, 64, AttentionSpec.builder().optCausal(true).build())
                .optPositions(-16 + 500, 500).build();
        assertEquals(500, aligned.getParams().get("mask.key_offset"));
        assertEquals(0, aligned.getParams().get("mask.query_shift"));
        assertEquals("flash_fwd_fp16_hd64_causal", aligned.kernelName(80), "an unshifted causal block stays causal");
        FlashAttention ring = dense(DeviceDataType.FP16, 64, AttentionSpec.builder().optCausal(true).build())
                .optPositions(300, 200).build();
        assertEquals(200, ring.getParams().get("mask.key_offset"));
        assertEquals(300 - (200 + 17 - 33), ring.getParams().get("mask.query_shift"));
        assertEquals("flash_fwd_fp16_hd64_positioned", ring.kernelName(80), "a shifted causal block needs positions");
        assertEquals(KernelModule.notBuiltReason(KernelModule.FLASH_FWD_SM90) == null
                ? "flash_fwd_sm90_fp16_hd64_positioned" : "flash_fwd_fp16_hd64_positioned", ring.kernelName(90));
        FlashAttention open = dense(DeviceDataType.BF16, 128, AttentionSpec.builder().build())
                .optPositions(300, 200).build();
        assertEquals("flash_fwd_bf16_hd128_plain", open.kernelName(80), "no mask: positions do not matter");
        FlashAttention sinks = dense(DeviceDataType.FP16, 64, AttentionSpec.builder().optWindowBounds(8, 0).optSinkTokens(4)
                .build()).optPositions(-16 + 100, 100).build();
        assertEquals("flash_fwd_fp16_hd64_positioned", sinks.kernelName(80), "sinks are global keys: key 0 at 100");
        FlashAttention window = dense(DeviceDataType.FP16, 64, AttentionSpec.builder().optWindowBounds(8, 0).build())
                .optPositions(-16 + 100, 100).build();
        assertEquals("flash_fwd_fp16_hd64_general", window.kernelName(80), "a relative window at aligned positions");
        FlashAttention defaults = dense(DeviceDataType.FP16, 64, AttentionSpec.builder().build()).build();
        assertEquals(0, defaults.getParams().get("mask.key_offset"));
        assertEquals(0, defaults.getParams().get("mask.query_shift"));
    }

    @Test
    void refusesPositionsItCannotPlace() {
        String m = assertThrows(IllegalArgumentException.class, () -> FlashAttention.builder().optPositions(0, -1))
                .getMessage();
        assertTrue(m.contains("keyStart must be >= 0"), m);
        m = message(IllegalArgumentException.class, FlashAttention.builder()
                .setQuery(tensor(DeviceDataType.FP16, 0, 130, 8, 64))
                .setKey(tensor(DeviceDataType.FP16, 1 << 24, 140, 1, 64))
                .setValue(tensor(DeviceDataType.FP16, 2 << 24, 140, 1, 64))
                .setOutput(tensor(DeviceDataType.FP16, 3 << 24, 130, 8, 64))
                .optVarlen(new int[] {0, 130}, new int[] {0, 140}).optPositions(10, 0)
                .setSpec(AttentionSpec.builder().build()));
        assertTrue(m.contains("optPositions is for dense calls"), m);
        m = message(IllegalArgumentException.class, dense(DeviceDataType.FP16, 64, AttentionSpec.builder().build())
                .optPositions(0, Integer.MAX_VALUE - 5));
        assertTrue(m.contains("exceed the kernels' int32 positions"), m);
    }
}
