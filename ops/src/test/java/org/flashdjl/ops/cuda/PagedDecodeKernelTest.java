package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttentionBackend;
import org.flashdjl.ops.paged.PagedAttentionBackends;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@link PagedDecodeKernel} without a GPU: the parameter layout against {@code paged_params.h}, the split-KV
 * schedule, dispatch (plain / general, merge launch with splits), every check before launch, and the {@code cuda}
 * backend's registration and refusals.
 */
class PagedDecodeKernelTest {

    private static final long BASE = 1L << 36;

    @Test
    void paramsMatchTheHeader() throws IOException {
        assertEquals(4, KernelStructTest.checkAgainstHeader(PagedDecodeKernel.LAYOUT,
                Path.of("src/main/cuda/paged_params.h")));
        assertEquals(208, PagedDecodeKernel.LAYOUT.size());
    }

    @Test
    void uploadedTableSectionsStartOnTheirOwnBoundary() {
        // batch 1: indptr is 2 ints; the page indices start on the next 256-byte boundary (not at byte 8, which cost
        // the split decode launches 1-4 points of the copy rate, runs 70-72), then the lengths, then the extra ints
        PageTable one = PageTable.fromBlockTable(16, new int[][] {{3, 0, 2}}, new int[] {40}, 4);
        assertEquals(Arrays.toString(new int[] {0, 64, 128, 192}),
                Arrays.toString(PagedStepBuffers.sectionStarts(one)));
        // 65 sequences of 5 pages (325 indices): indptr 66 ints -> 128, indices -> 128 + 384, lengths 65 -> + 128
        int[][] blocks = new int[65][5];
        int[] lens = new int[65];
        for (int i = 0; i < 65; i++) {
            for (int j = 0; j < 5; j++) {
                blocks[i][j] = i * 5 + j;
            }
            lens[i] = 80;
        }
        PageTable many = PageTable.fromBlockTable(16, blocks, lens, 325);
        assertEquals(Arrays.toString(new int[] {0, 128, 512, 640}),
                Arrays.toString(PagedStepBuffers.sectionStarts(many)));
        assertEquals(0, PagedStepBuffers.SECTION_BYTES % 128, "a section starts on whole 128-byte L2 lines");
    }

    @Test
    void scheduleSplitsOnlyWhatTheBatchCannotFill() {
        int[] big = new int[64];
        Arrays.fill(big, 4096);
        assertEquals(new PagedDecodeKernel.Schedule(1, 4096), PagedDecodeKernel.schedule(big, 8, 132));
        // batch 1 x 64k, 8 kv heads on 132 SMs: one wave of 8 x 16 CTAs (33 splits = 264 CTAs, two per SM, costs more)
        PagedDecodeKernel.Schedule s = PagedDecodeKernel.schedule(new int[] {65536}, 8, 132);
        assertEquals(new PagedDecodeKernel.Schedule(16, 4096), s);
        assertTrue(8L * s.numSplits() <= 132);
        // 8 x 16k: 2 splits fill one wave (128 CTAs); 3 would spill 60 CTAs into a second wave
        int[] mid = new int[8];
        Arrays.fill(mid, 16384);
        assertEquals(new PagedDecodeKernel.Schedule(2, 8192), PagedDecodeKernel.schedule(mid, 8, 132));
        // 2 x 16k + 30 short: the long ones are split although the batch alone would fill a wave
        int[] mixed = new int[32];
        Arrays.fill(mixed, 300);
        mixed[0] = 16384;
        mixed[1] = 16384;
        PagedDecodeKernel.Schedule m = PagedDecodeKernel.schedule(mixed, 8, 132);
        assertTrue(m.numSplits() > 1 && m.chunkSize() >= PagedDecodeKernel.MIN_CHUNK, m.toString());
        // short sequences never go below the minimum chunk
        assertEquals(new PagedDecodeKernel.Schedule(1, 112), PagedDecodeKernel.schedule(new int[] {100, 3}, 1, 132));
        PagedDecodeKernel.Schedule odd = PagedDecodeKernel.schedule(new int[] {4099, 17, 0}, 2, 132);
        assertEquals(0, odd.chunkSize() % PagedDecodeKernel.TILE);
        assertTrue(odd.chunkSize() >= PagedDecodeKernel.MIN_CHUNK);
        assertTrue((long) odd.numSplits() * odd.chunkSize() >= 4099);
        assertEquals(new PagedDecodeKernel.Schedule(1, 16), PagedDecodeKernel.schedule(new int[] {0}, 8, 132));
    }

    @Test
    void unsupportedCombinationsNameTheSupportedValues() {
        assertEquals("head dim 80 not supported by the paged decode kernels; supported: 64, 128, 256",
                PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, 80, 8, 8));
        assertTrue(PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, 128, 64, 2).contains("1..16"));
        assertTrue(PagedDecodeKernel.unsupportedReason(DeviceDataType.FP32, 128, 8, 8).contains("fp16, bf16"));
        assertNull(PagedDecodeKernel.unsupportedReason(DeviceDataType.BF16, 256, 16, 1));
    }

    private static DeviceTensor t(long address, DeviceDataType type, long... shape) {
        return DeviceTensor.fromDevicePointer(address, shape, DeviceTensor.contiguousStrides(shape), type, 0);
    }

    private static PagedDecodeKernel.Builder call(PagedDecodeKernel.DecodeStep ws, DeviceDataType type, int b, int hq,
            int hkv, int d, int pages, int ps) {
        return PagedDecodeKernel.builder()
                .setQuery(t(BASE, type, b, hq, d))
                .setKeyPages(t(BASE + (1L << 30), type, pages, ps, hkv, d))
                .setValuePages(t(BASE + (2L << 30), type, pages, ps, hkv, d))
                .setOutput(t(BASE + (3L << 30), type, b, hq, d))
                .optLse(t(BASE + (4L << 30), DeviceDataType.FP32, b, hq))
                .setSpec(AttentionSpec.builder().build())
                .setWorkspace(ws);
    }

    private static PageTable table(int ps) {
        return PageTable.fromCsr(ps, new int[] {0, 2, 3}, new int[] {4, 1, 0}, new int[] {ps, 3}, 6);
    }

    @Test
    void packsParamsAndPicksTheKernel() {
        PagedDecodeKernel.DecodeStep ws = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(1, 32));
        PagedDecodeKernel k = call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build();
        // grid (1, 8, 2): 16 CTAs, at most one an SM -> the 8-warp _wide kernel
        assertEquals("paged_decode_fp16_hd128_plain_wide", k.kernelName());
        KernelStruct p = k.getParams();
        assertEquals(0L, p.get("split_counters"));
        assertEquals(8L * 128, p.get("kv_row_stride"));
        assertEquals(128L, p.get("kv_head_stride"));
        assertEquals(32L * 128, p.get("q_batch_stride"));
        assertEquals(32L, p.get("lse_batch_stride"));
        assertEquals(16, p.get("page_size"));
        assertEquals(4, p.get("hq").intValue() / p.get("hkv").intValue());
        assertEquals((float) (1 / Math.sqrt(128)), p.get("mask.scale").floatValue(), 1e-7);
        PagedDecodeKernel general = call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .setSpec(AttentionSpec.builder().optWindowBounds(64, -1).optSinkTokens(4).build()).optKeyOffset(7).build();
        assertEquals("paged_decode_fp16_hd128_general_wide", general.kernelName());
        assertEquals(64, general.getParams().get("mask.window_left"));
        assertEquals(7, general.getParams().get("mask.key_offset"));
        // causal and right windows are no-ops for decode: still the plain kernel
        assertEquals("paged_decode_bf16_hd128_plain_wide", call(ws, DeviceDataType.BF16, 2, 32, 8, 128, 6, 16)
                .setSpec(AttentionSpec.builder().optCausal(true).optWindowBounds(-1, 3).build()).build().kernelName());
        PagedDecodeKernel.DecodeStep split = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(2, 16));
        PagedDecodeKernel s = call(split, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build();
        assertEquals(2, s.getParams().get("num_splits"));
        // the split counters (zeroed int32 [B * Hkv]) follow the sequence lengths [B] in the step's one table upload,
        // each section on its own 256-byte boundary
        assertEquals(s.getParams().get("seq_lens").longValue() + PagedStepBuffers.SECTION_BYTES,
                s.getParams().get("split_counters").longValue());
        assertEquals(PagedStepBuffers.SECTION_BYTES, s.getParams().get("page_indices").longValue()
                - s.getParams().get("page_indptr").longValue());
        IllegalStateException e = assertThrows(IllegalStateException.class, s::run);
        assertTrue(e.getMessage().contains("validation-only"), e.getMessage());
    }

    @Test
    void takesTheWideKernelOnlyForOneWaveAtHeadDim128() {
        // B = 2, Hkv = 8: 16 CTAs a split; UnallocatedSteps plans for 132 SMs
        int fits = UnallocatedSteps.SM_COUNT / 16; // 8 splits: 128 CTAs, one wave
        PagedDecodeKernel.DecodeStep oneWave = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(fits, 16));
        assertEquals("paged_decode_fp16_hd128_plain_wide",
                call(oneWave, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build().kernelName());
        PagedDecodeKernel.DecodeStep twoWaves = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(fits + 1, 16)); // 144 CTAs > 132 SMs
        assertEquals("paged_decode_fp16_hd128_plain",
                call(twoWaves, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build().kernelName());
        assertEquals("paged_decode_bf16_hd128_general", call(twoWaves, DeviceDataType.BF16, 2, 32, 8, 128, 6, 16)
                .setSpec(AttentionSpec.builder().optSoftcap(30f).build()).build().kernelName());
        // a one-wave grid of 2 splits on sm_90: the cluster-of-2 form; on compute capability 8.x the plain _wide one
        PagedDecodeKernel.DecodeStep twoSplits = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(2, 16));
        assertEquals("paged_decode_fp16_hd128_plain_wide_pair",
                call(twoSplits, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build().kernelName());
        assertEquals("paged_decode_bf16_hd128_general_wide_pair", call(twoSplits, DeviceDataType.BF16, 2, 32, 8, 128,
                6, 16).setSpec(AttentionSpec.builder().optWindowBounds(8, -1).build()).build().kernelName());
        PagedDecodeKernel.DecodeStep ampere = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(2, 16), 8);
        assertEquals("paged_decode_fp16_hd128_plain_wide",
                call(ampere, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build().kernelName());
        // hd 64 and 256 have no _wide kernels
        for (int d : new int[] {64, 256}) {
            PagedDecodeKernel.DecodeStep ws = UnallocatedSteps.decode(table(16), 32, 8, d, 0,
                    new PagedDecodeKernel.Schedule(1, 32));
            assertEquals("paged_decode_fp16_hd" + d + "_plain",
                    call(ws, DeviceDataType.FP16, 2, 32, 8, d, 6, 16).build().kernelName());
        }
    }

    @Test
    void takesTheFastestFormThatFitsTheSharedMemoryLimit() {
        PagedDecodeKernel.Schedule oneWave = new PagedDecodeKernel.Schedule(8, 16); // 2 x 8 x 8 = 128 CTAs
        PagedDecodeKernel.Schedule twoSplits = new PagedDecodeKernel.Schedule(2, 16);
        // an sm_89 GPU (99 KB a CTA): no _wide(_pair), no 4-warp hd 128 / 256 kernel; hd 64 fits
        int ada = 101376;
        for (PagedDecodeKernel.Schedule s : new PagedDecodeKernel.Schedule[] {oneWave, twoSplits}) {
            for (int d : new int[] {128, 256}) {
                PagedDecodeKernel.DecodeStep ws = UnallocatedSteps.decode(table(16), 32, 8, d, 0, s, 8, ada);
                assertEquals("paged_decode_fp16_hd" + d + "_plain_compact",
                        call(ws, DeviceDataType.FP16, 2, 32, 8, d, 6, 16).build().kernelName());
                assertEquals("paged_decode_bf16_hd" + d + "_general_compact", call(ws, DeviceDataType.BF16, 2, 32, 8,
                        d, 6, 16).setSpec(AttentionSpec.builder().optSoftcap(30f).build()).build().kernelName());
            }
            PagedDecodeKernel.DecodeStep hd64 = UnallocatedSteps.decode(table(16), 32, 8, 64, 0, s, 8, ada);
            assertEquals("paged_decode_fp16_hd64_plain",
                    call(hd64, DeviceDataType.FP16, 2, 32, 8, 64, 6, 16).build().kernelName());
        }
        // an A100 (163 KB): every form fits, as on Hopper (the pair needs 9.x)
        PagedDecodeKernel.DecodeStep a100 = UnallocatedSteps.decode(table(16), 32, 8, 128, 0, oneWave, 8, 166912);
        assertEquals("paged_decode_fp16_hd128_plain_wide",
                call(a100, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).build().kernelName());
        // the caller's limit, down the chain _wide_pair -> _wide -> 4-warp -> _compact at each form's need
        PagedDecodeKernel.DecodeStep h200 = UnallocatedSteps.decode(table(16), 32, 8, 128, 0, twoSplits);
        int[] limits = {PagedDecodeKernel.SHARED_MEMORY.get("hd128_wide_pair"),
            PagedDecodeKernel.SHARED_MEMORY.get("hd128_wide_pair") - 1, PagedDecodeKernel.SHARED_MEMORY.get("hd128_wide"),
            PagedDecodeKernel.SHARED_MEMORY.get("hd128_wide") - 1, PagedDecodeKernel.SHARED_MEMORY.get("hd128"),
            PagedDecodeKernel.SHARED_MEMORY.get("hd128") - 1, PagedDecodeKernel.SHARED_MEMORY.get("hd128_compact")};
        String[] forms = {"_wide_pair", "_wide", "_wide", "", "", "_compact", "_compact"};
        for (int i = 0; i < limits.length; i++) {
            assertEquals("paged_decode_fp16_hd128_plain" + forms[i], call(h200, DeviceDataType.FP16, 2, 32, 8, 128, 6,
                    16).optSharedMemoryLimit(limits[i]).build().kernelName(), "limit " + limits[i]);
        }
        // nothing fits: the error names the need and the limit; a bad limit is refused
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> call(h200, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16).optSharedMemoryLimit(73983).build());
        assertTrue(e.getMessage().contains("head dim 128 need at least 73984 bytes of shared memory a CTA, but "
                + "optSharedMemoryLimit allows 73983"), e.getMessage());
        PagedDecodeKernel.DecodeStep tiny = UnallocatedSteps.decode(table(16), 32, 8, 256, 0, oneWave, 8, 49152);
        e = assertThrows(UnsupportedOperationException.class,
                () -> call(tiny, DeviceDataType.FP16, 2, 32, 8, 256, 6, 16).build());
        assertTrue(e.getMessage().contains("head dim 256 need at least 76032 bytes") && e.getMessage().contains(
                "48 KB shared memory a block) allows 49152"), e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> PagedDecodeKernel.builder().optSharedMemoryLimit(0));
        assertTrue(bad.getMessage().contains("shared memory limit 0 must be positive"), bad.getMessage());
    }

    @Test
    void sharedMemoryTableMatchesTheKernelSource() throws IOException {
        // paged_decode.cu pins each form's launch shared memory in a static_assert whose message names the table's key
        String src = Files.readString(Path.of("src/main/cuda/paged_decode.cu"));
        Matcher m = Pattern.compile("static_assert\\([\\w:<>]+ == (\\d+), \"PagedDecodeKernel\\."
                + "SHARED_MEMORY (\\w+)\"\\);").matcher(src);
        Map<String, Integer> pinned = new HashMap<>();
        while (m.find()) {
            pinned.put(m.group(2), Integer.parseInt(m.group(1)));
        }
        assertEquals(PagedDecodeKernel.SHARED_MEMORY, pinned);
        // and the exports: every form of the table is a kernel of the source
        for (String key : pinned.keySet()) {
            String form = key.substring(key.indexOf('_') < 0 ? key.length() : key.indexOf('_'));
            String d = key.substring(2, key.length() - form.length());
            boolean exported = form.equals("_wide_pair") ? src.contains("_hd128_##VNAME##_wide_pair(")
                    : src.contains("FLASHDJL_PAGED_DECODE_DT(" + d + ", plain, false, ") && src.contains(
                            "FLASHDJL_PAGED_DECODE_DT(" + d + ", plain, false, flashdjl::"
                                    + (form.equals("_wide") ? "DecodeWideTraits128, _wide)"
                                            : form.equals("_compact") ? "DecodeCompactTraitsFor<" + d + ">, _compact)"
                                                    : "DecodeTraitsFor<" + d + ">, )"));
            assertTrue(exported, key + " is not exported by paged_decode.cu");
        }
    }

    @Test
    void rejectsBadInputsBeforeAnyLaunch() {
        PagedDecodeKernel.DecodeStep ws = UnallocatedSteps.decode(table(16), 32, 8, 128, 0,
                new PagedDecodeKernel.Schedule(1, 32));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                        .setValuePages(t(BASE + (2L << 30), DeviceDataType.BF16, 6, 16, 8, 128)).build());
        assertTrue(e.getMessage().contains("valuePages has dtype bf16 but query has fp16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 8).build());
        assertTrue(e.getMessage().contains("page size 8 differs from the page table's 16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 4, 16).build());
        assertTrue(e.getMessage().contains("references page 4 but the cache has 4 pages"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> call(ws, DeviceDataType.FP16, 3, 32, 8, 128, 6, 16).build());
        assertTrue(e.getMessage().contains("query has 3 rows but the page table has 2 sequences"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .setQuery(t(BASE + 2, DeviceDataType.FP16, 2, 32, 128)).build());
        assertTrue(e.getMessage().contains("not 16-byte aligned"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .optLse(t(BASE + (4L << 30), DeviceDataType.FP32, 2, 31)).build());
        assertTrue(e.getMessage().contains("lse must be fp32 [2, 32]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .setSpec(AttentionSpec.builder().optAlibiSlopes(new float[8]).build()).build());
        assertTrue(e.getMessage().contains("needs one per query head (32)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .optKeyOffset(-1).build());
        assertTrue(e.getMessage().contains("keyOffset -1"), e.getMessage());
        DeviceTensor strided = DeviceTensor.fromDevicePointer(BASE + (1L << 30), new long[] {6, 16, 8, 128},
                new long[] {2 * 16 * 8 * 128, 8 * 128, 128, 1}, DeviceDataType.FP16, 0);
        e = assertThrows(IllegalArgumentException.class, () -> call(ws, DeviceDataType.FP16, 2, 32, 8, 128, 6, 16)
                .setKeyPages(strided).setValuePages(strided).build());
        assertTrue(e.getMessage().contains("pages must be dense in the pool"), e.getMessage());
        PagedDecodeKernel.DecodeStep ws80 = UnallocatedSteps.decode(table(16), 8, 8, 80, 0,
                new PagedDecodeKernel.Schedule(1, 32));
        UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class,
                () -> call(ws80, DeviceDataType.FP16, 2, 8, 8, 80, 6, 16).build());
        assertEquals("head dim 80 not supported by the paged decode kernels; supported: 64, 128, 256",
                u.getMessage());
    }

    @Test
    void cudaBackendIsRegisteredAndExplainsItself() {
        assertTrue(PagedAttentionBackends.names().contains("cuda"), PagedAttentionBackends.names().toString());
        PagedAttentionBackend cuda = PagedAttentionBackends.get("cuda");
        assertTrue(cuda instanceof CudaPagedAttentionBackend);
        if (CudaRuntime.unavailableReason() != null) {
            assertTrue(cuda.unavailableReason().startsWith("CUDA not available"), cuda.unavailableReason());
        }
    }
}
