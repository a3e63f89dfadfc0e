package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * {@link CudaSharedPrefixDecode} without a GPU: the prefix split planner, the option refusals, the checks before
 * launch and the prepared launches' views (strides of the split flash calls, the strided LSE merge) on a plan
 * assembled over placeholder addresses (nothing is launched).
 */
class CudaSharedPrefixDecodeTest {

    private static final long BASE = 1L << 36;

    /** Placeholder addresses of the step memory of a plan that is never launched. */
    private static final long FAKE = 1L << 44;

    /** A plan over placeholder memory and a suffix workspace without device memory. */
    private static CudaSharedPrefixDecode unallocated(PageTable suffixTable, int prefixLen, int queryHeads,
            int kvHeads, int headDim, int device, SharedPrefixSplit split, PagedDecodeKernel.Schedule schedule) {
        PagedDecodeKernel.Schedule sched = schedule != null ? schedule : PagedDecodeKernel.schedule(
                suffixTable.getSeqLens(), kvHeads, 132);
        PagedDecodeKernel.DecodeStep ws = UnallocatedSteps.decode(suffixTable, queryHeads, kvHeads,
                headDim, device, sched);
        return new CudaSharedPrefixDecode(suffixTable, prefixLen, queryHeads, kvHeads, headDim, device, split, ws,
                new CudaSharedPrefixDecode.StepMemory(FAKE, 2 * FAKE, 3 * FAKE, 4 * FAKE, 5 * FAKE, List.of()));
    }

    @Test
    void plannerFillsTheGpuWithAlignedChunks() {
        // 32k prefix, B 128, Hq 32 on 132 SMs: 4 x 132 / 32 -> 17 chunks wanted, 1920-key chunks (x128)
        SharedPrefixSplit p = SharedPrefixSplit.plan(32768, 128, 32, 132, 128);
        assertEquals(0, p.chunk() % SharedPrefixSplit.CHUNK_ALIGN);
        assertEquals(32768, (long) p.fullChunks() * p.chunk() + p.tail());
        assertTrue(32L * p.states() >= 2 * 132, p.toString());
        assertTrue(p.states() <= 24, p.toString());
        // a batch of 512 needs 4 row blocks: fewer chunks
        SharedPrefixSplit big = SharedPrefixSplit.plan(32768, 512, 32, 132, 128);
        assertTrue(big.states() < p.states(), big + " vs " + p);
        // short prefixes: one chunk, never below the minimum unless the prefix is shorter
        assertEquals(new SharedPrefixSplit(37, 37, 1, 0),
                SharedPrefixSplit.plan(37, 4, 8, 132, 128));
        SharedPrefixSplit mid = SharedPrefixSplit.plan(4099, 3, 8, 132, 128);
        assertTrue(mid.chunk() >= SharedPrefixSplit.MIN_CHUNK && mid.tail() > 0, mid.toString());
        assertEquals(new SharedPrefixSplit(0, 0, 0, 0),
                SharedPrefixSplit.plan(0, 4, 8, 132, 128));
        // very long prefixes stay within the merge's state limit
        assertTrue(SharedPrefixSplit.plan(Integer.MAX_VALUE / 2, 1, 1, 100000, 128).states()
                <= SharedPrefixSplit.MAX_SPLITS);
        assertEquals(new SharedPrefixSplit(1000, 300, 3, 100), SharedPrefixSplit.bySize(1000, 300));
        assertEquals("3 x 300 + 100 keys", SharedPrefixSplit.bySize(1000, 300).toString());
        assertThrows(IllegalArgumentException.class, () -> new SharedPrefixSplit(1000, 300, 3, 99));
        assertThrows(IllegalArgumentException.class, () -> SharedPrefixSplit.bySize(5000, 1));
    }

    @Test
    void refusesPositionDependentOptionsNamingTheSupportedOnes() {
        assertNull(CudaSharedPrefixDecode.unsupportedReason(AttentionSpec.builder().optCausal(true).optSoftcap(20f)
                .optScale(0.1f).build()));
        for (AttentionSpec s : new AttentionSpec[] {AttentionSpec.builder().optWindowBounds(64, -1).build(),
            AttentionSpec.builder().optWindowBounds(-1, 0).build(), AttentionSpec.builder().optSinkTokens(4).build(),
            AttentionSpec.builder().optAlibiSlopes(new float[] {0.5f, 0.25f}).build()}) {
            String why = CudaSharedPrefixDecode.unsupportedReason(s);
            assertNotNull(why, s.toString());
            assertTrue(why.contains("plain or causal") && why.contains("SharedPrefixBatchDecode"), why);
        }
    }

    private static DeviceTensor t(long address, DeviceDataType type, long... shape) {
        return DeviceTensor.fromDevicePointer(address, shape, DeviceTensor.contiguousStrides(shape), type, 0);
    }

    private static PageTable suffixes() { // B = 3: 2 pages, 1 page, empty
        return PageTable.fromCsr(16, new int[] {0, 2, 3, 3}, new int[] {4, 1, 0}, new int[] {16, 3, 0}, 6);
    }

    private static CudaSharedPrefixDecode.Layer prepare(CudaSharedPrefixDecode plan, int p, AttentionSpec spec,
            DeviceTensor lse) {
        DeviceDataType h = DeviceDataType.FP16;
        return plan.prepare(t(BASE, h, 3, 8, 128), t(BASE + (1L << 30), h, p, 2, 128),
                t(BASE + (2L << 30), h, p, 2, 128), t(BASE + (3L << 30), h, 6, 16, 2, 128),
                t(BASE + (4L << 30), h, 6, 16, 2, 128), spec, t(BASE + (5L << 30), h, 3, 8, 128), lse);
    }

    @Test
    void preparesSplitFlashCallsAndStridedMerges() {
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
        try (CudaSharedPrefixDecode plan = unallocated(suffixes(), 1000, 8, 2, 128, 0,
                SharedPrefixSplit.bySize(1000, 384), null)) {
            CudaSharedPrefixDecode.Layer layer = prepare(plan, 1000, spec,
                    t(BASE + (6L << 30), DeviceDataType.FP32, 3, 8));
            FlashAttention[] calls = layer.getPrefixCalls();
            assertEquals(2, calls.length);
            KernelStruct main = calls[0].getParams();
            assertEquals(2, main.get("batch").intValue()); // two full chunks
            assertEquals(3, main.get("lq").intValue()); // the B queries are the rows
            assertEquals(384, main.get("lk").intValue());
            assertEquals(0, main.get("mask.causal").intValue()); // every query is after the prefix
            assertEquals(0L, main.get("q_batch_stride").longValue()); // same queries per chunk
            assertEquals(384L * 2 * 128, main.get("k_batch_stride").longValue());
            assertEquals(8L * 128, main.get("o_batch_stride").longValue()); // state stride
            assertEquals(3L * 8 * 128, main.get("o_row_stride").longValue()); // request stride
            assertEquals(8L, main.get("lse_batch_stride").longValue()); // state stride
            assertEquals(1L, main.get("lse_head_stride").longValue());
            assertEquals(3L * 8, main.get("lse_row_stride").longValue()); // request stride
            KernelStruct tail = calls[1].getParams();
            assertEquals(1, tail.get("batch").intValue());
            assertEquals(232, tail.get("lk").intValue());
            assertEquals(BASE + (1L << 30) + 2L * 768 * 2 * 128, tail.get("k").longValue());
            assertEquals(main.get("o").longValue() + 2L * 2 * 8 * 128,
                    tail.get("o").longValue());
            KernelStruct merge = layer.getPrefixMerge().getParams();
            assertEquals(3, merge.get("states").intValue());
            assertEquals(24L, merge.get("s_a_row_stride").longValue()); // the LSEs laid out like the outputs
            assertEquals(8L, merge.get("s_a_state_stride").longValue());
            assertEquals(1L, merge.get("s_a_head_stride").longValue());
            assertEquals(1000L, layer.getSuffixDecode().getParams().get("mask.key_offset").longValue());
            assertNotNull(layer.getFinalMerge());
        }
    }

    @Test
    void noPrefixIsAPlainDecode() {
        try (CudaSharedPrefixDecode plan = unallocated(suffixes(), 0, 8, 2, 128, 0,
                SharedPrefixSplit.bySize(0, 1), null)) {
            CudaSharedPrefixDecode.Layer layer = prepare(plan, 0, AttentionSpec.builder().build(), null);
            assertEquals(0, layer.getPrefixCalls().length);
            assertNull(layer.getPrefixMerge());
            assertNull(layer.getFinalMerge());
            assertEquals(0L, layer.getSuffixDecode().getParams().get("mask.key_offset").longValue());
        }
    }

    @Test
    void checksBeforeLaunch() {
        AttentionSpec plain = AttentionSpec.builder().build();
        try (CudaSharedPrefixDecode plan = unallocated(suffixes(), 1000, 8, 2, 128, 0,
                SharedPrefixSplit.bySize(1000, 512), null)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> prepare(plan, 999,
                    plain, null));
            assertTrue(e.getMessage().contains("kShared must be [P, Hkv, D] = [1000, 2, 128]"), e.getMessage());
            UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class, () -> prepare(plan,
                    1000, AttentionSpec.builder().optWindowBounds(8, -1).build(), null));
            assertTrue(u.getMessage().contains("sliding window"), u.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> prepare(plan, 1000, plain,
                    t(BASE + (6L << 30), DeviceDataType.FP32, 8, 3)));
            assertTrue(e.getMessage().contains("lse must be fp32 [3, 8]"), e.getMessage());
            DeviceDataType h = DeviceDataType.FP16;
            e = assertThrows(IllegalArgumentException.class, () -> plan.prepare(t(BASE, h, 4, 8, 128),
                    null, null, null, null, plain, t(BASE, h, 4, 8, 128), null));
            assertTrue(e.getMessage().contains("query must be [B, Hq, D] = [3, 8, 128]"), e.getMessage());
            // misaligned prefix strides are caught by the flash checks
            DeviceTensor badK = DeviceTensor.fromDevicePointer(BASE + (1L << 30), new long[] {1000, 2, 128},
                    new long[] {260, 130, 1}, h, 0);
            e = assertThrows(IllegalArgumentException.class, () -> plan.prepare(t(BASE, h, 3, 8, 128), badK,
                    badK, t(BASE + (3L << 30), h, 6, 16, 2, 128), t(BASE + (4L << 30), h, 6, 16, 2, 128), plain,
                    t(BASE + (5L << 30), h, 3, 8, 128), null));
            assertTrue(e.getMessage().contains("multiple of 8"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> unallocated(suffixes(), 1000, 8,
                2, 128, 0, SharedPrefixSplit.bySize(999, 512), null));
        assertThrows(IllegalArgumentException.class, () -> unallocated(suffixes(), 10, 8,
                2, 80, 0, SharedPrefixSplit.bySize(10, 512), null));
        CudaSharedPrefixDecode closed = unallocated(suffixes(), 10, 8, 2, 128, 0,
                SharedPrefixSplit.bySize(10, 512), null);
        closed.close();
        assertThrows(IllegalStateException.class, () -> prepare(closed, 10, plain, null));
    }
}
