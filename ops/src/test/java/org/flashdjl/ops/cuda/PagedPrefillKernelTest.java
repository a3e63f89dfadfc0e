package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

/** {@link PagedPrefillKernel} without a GPU: the parameter layout against its header, kernel choice, validation. */
class PagedPrefillKernelTest {

    private static final long BASE = 1L << 32;

    @Test
    void paramsMatchTheHeader() throws IOException {
        assertEquals(4, KernelStructTest.checkAgainstHeader(PagedPrefillKernel.LAYOUT,
                Path.of("src/main/cuda/paged_prefill_params.h")));
        assertEquals(192, PagedPrefillKernel.LAYOUT.size());
    }

    private static DeviceTensor t(long address, DeviceDataType type, long... shape) {
        return DeviceTensor.fromDevicePointer(address, shape, DeviceTensor.contiguousStrides(shape), type, 0);
    }

    @Test
    void packsParamsPicksTheKernelAndValidates() {
        PageTable table = PageTable.fromCsr(16, new int[] {0, 2, 3}, new int[] {0, 3, 1}, new int[] {4, 16}, 4);
        int[] qo = {0, 20, 23}; // lengths 20 of 20 keys, 3 of 16
        PagedPrefillKernel.PrefillStep ws = UnallocatedSteps.prefill(table, qo, 0);
        PagedPrefillKernel.Builder call = PagedPrefillKernel.builder()
                .setQuery(t(BASE, DeviceDataType.FP16, 23, 8, 128))
                .setKeyPages(t(BASE + (1L << 28), DeviceDataType.FP16, 4, 16, 2, 128))
                .setValuePages(t(BASE + (2L << 28), DeviceDataType.FP16, 4, 16, 2, 128))
                .setOutput(t(BASE + (3L << 28), DeviceDataType.FP16, 23, 8, 128))
                .optLse(t(BASE + (4L << 28), DeviceDataType.FP32, 23, 8))
                .setSpec(AttentionSpec.builder().optCausal(true).build())
                .setWorkspace(ws);
        PagedPrefillKernel k = call.build();
        assertEquals("paged_prefill_fp16_hd128_causal", k.kernelName());
        assertEquals(8L * 128, k.getParams().get("q_row_stride"));
        assertEquals(8L, k.getParams().get("lse_row_stride"));
        assertEquals(20, k.getParams().get("lq"));
        assertEquals(2L * 128, k.getParams().get("kv_row_stride"));
        assertEquals("paged_prefill_fp16_hd128_general",
                call.setSpec(AttentionSpec.builder().optCausal(false).build()).build().kernelName());
        // the Hopper family by name (a workspace without device memory never asks the device), the same block
        PagedPrefillKernel hopper = call.optArch(FlashDispatch.Arch.SM90).build();
        assertEquals("paged_prefill_sm90_fp16_hd128_general", hopper.kernelName());
        assertEquals(k.getParams().get("kv_row_stride"), hopper.getParams().get("kv_row_stride"));
        assertEquals("paged_prefill_fp16_hd128_causal", call.optArch(FlashDispatch.Arch.SM80)
                .setSpec(AttentionSpec.builder().optCausal(true).build()).build().kernelName());
        call.optArch(null);
        IllegalStateException s = assertThrows(IllegalStateException.class, k::run);
        assertTrue(s.getMessage().contains("validation-only") || s.getMessage().contains("CUDA"), s.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UnallocatedSteps.prefill(table, new int[] {0, 30, 23}, 0));
        assertTrue(e.getMessage().contains("non-decreasing"), e.getMessage());
        PagedPrefillKernel.PrefillStep tooMany = UnallocatedSteps.prefill(table, new int[] {0, 21, 24}, 0);
        e = assertThrows(IllegalArgumentException.class, () -> call.setWorkspace(tooMany)
                .setQuery(t(BASE, DeviceDataType.FP16, 24, 8, 128))
                .setOutput(t(BASE + (3L << 28), DeviceDataType.FP16, 24, 8, 128)).optLse(null).build());
        assertTrue(e.getMessage().contains("sequence 0 has 21 query tokens but only 20 cached keys"), e.getMessage());
        assertEquals("head dim 256 not supported by the paged prefill kernels; supported: 64, 128",
                PagedPrefillKernel.unsupportedReason(DeviceDataType.FP16, 256, 8, 2));
    }
}
