package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Hopper kernels' parameter block ({@code FlashFwdSm90Params}) against {@code flash_params.h}, and the tensor-map
 * geometry {@link TensorMaps} hands the driver (what the kernels' TMA path assumes: box {64, key tile}, strides in
 * bytes, dense rows bounded by Lk, varlen rows unbounded with one batch entry). The maps themselves need a driver:
 * the GPU runs of {@code flash_check} and the GPU suite cover them.
 */
class TensorMapsTest {

    @Test
    void blockOffsetsMatchTheHeader() throws IOException {
        String text = Files.readString(Path.of("src/main/cuda/flash_params.h"));
        Map<String, Integer> expected = Map.of("tma", TensorMaps.TMA_OFFSET, "k_map", TensorMaps.K_MAP_OFFSET,
                "v_map", TensorMaps.V_MAP_OFFSET);
        Matcher off = Pattern.compile("offsetof\\(FlashFwdSm90Params,\\s*(\\w+)\\)\\s*==\\s*(\\d+)").matcher(text);
        int checked = 0;
        while (off.find()) {
            assertEquals(expected.get(off.group(1)), Integer.parseInt(off.group(2)), off.group(1));
            checked++;
        }
        assertEquals(3, checked);
        Matcher size = Pattern.compile("sizeof\\(FlashFwdSm90Params\\)\\s*==\\s*(\\d+)").matcher(text);
        assertTrue(size.find());
        assertEquals(TensorMaps.SIZE, Integer.parseInt(size.group(1)));
        assertEquals(FlashAttention.LAYOUT.size(), TensorMaps.TMA_OFFSET, "the common block comes first");
    }

    private static KernelStruct params(int batch, int hkv, int lk, int d, long rowStride, long headStride,
            long batchStride, boolean varlen) {
        KernelStruct p = FlashAttention.LAYOUT.newStruct().set("k", 0x7000_0000L).set("v", 0x7100_0000L)
                .set("batch", batch).set("hq", hkv * 4).set("hkv", hkv).set("lq", 1).set("lk", lk)
                .set("head_dim", d);
        for (String t : new String[] {"k", "v"}) {
            p.set(t + "_row_stride", rowStride).set(t + "_head_stride", headStride)
                    .set(t + "_batch_stride", batchStride);
        }
        if (varlen) {
            p.set("cu_seqlens_q", 0x1000).set("cu_seqlens_k", 0x2000);
        }
        return p;
    }

    @Test
    void denseBshdMap() {
        // K [B=3, Lk=1000, Hkv=8, D=128]: rows 8 * 128 elements apart, heads 128, batch entries 1000 rows
        TensorMaps.Geometry g = TensorMaps.geometry(params(3, 8, 1000, 128, 1024, 128, 1024 * 1000, false), "k", 128);
        assertEquals(0x7000_0000L, g.address());
        assertArrayEquals(new long[] {128, 1000, 8, 3}, g.dims());
        assertArrayEquals(new long[] {2048, 256, 2048 * 1000}, g.strides());
        assertArrayEquals(new int[] {64, 128, 1, 1}, g.box());
        TensorMaps.Geometry v = TensorMaps.geometry(params(3, 8, 1000, 128, 1024, 128, 1024 * 1000, false), "v", 80);
        assertEquals(0x7100_0000L, v.address());
        assertArrayEquals(new int[] {64, 80, 1, 1}, v.box());
    }

    @Test
    void varlenMapIsUnboundedInRowsWithOneBatchEntry() {
        // K [totalK, Hkv=2, D=64] (batch stride 0, as varlen tensors have)
        TensorMaps.Geometry g = TensorMaps.geometry(params(5, 2, 300, 64, 128, 64, 0, true), "k", 128);
        assertArrayEquals(new long[] {64, Integer.MAX_VALUE, 2, 1}, g.dims());
        assertArrayEquals(new long[] {256, 128, 128}, g.strides(), "row, head, and the head's for the one batch entry");
    }

    @Test
    void sizeOneDimensionsGetUsableStrides() {
        // MQA, one sequence: head and batch strides of 0 in the params (never used) take the row stride
        TensorMaps.Geometry g = TensorMaps.geometry(params(1, 1, 4096, 256, 256, 0, 0, false), "k", 64);
        assertArrayEquals(new long[] {256, 4096, 1, 1}, g.dims());
        assertArrayEquals(new long[] {512, 512, 512}, g.strides());
    }

    @Test
    void tmaOffLeavesTheCommonBlockAndAZeroFlag() {
        byte[] common = params(2, 4, 777, 128, 512, 128, 512 * 777, false).toBytes();
        String before = System.getProperty(TensorMaps.TMA_PROPERTY);
        System.setProperty(TensorMaps.TMA_PROPERTY, "false");
        try {
            byte[] block = TensorMaps.sm90Parameters(common, 128);
            assertEquals(TensorMaps.SIZE, block.length);
            assertArrayEquals(common, Arrays.copyOf(block, common.length));
            ByteBuffer b = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(0, b.getInt(TensorMaps.TMA_OFFSET));
            for (int i = TensorMaps.TMA_OFFSET; i < TensorMaps.SIZE; i++) {
                assertEquals(0, block[i], "byte " + i);
            }
        } finally {
            if (before == null) {
                System.clearProperty(TensorMaps.TMA_PROPERTY);
            } else {
                System.setProperty(TensorMaps.TMA_PROPERTY, before);
            }
        }
    }

    @Test
    void pagedBlockOffsetsMatchTheHeader() throws IOException {
        String text = Files.readString(Path.of("src/main/cuda/paged_prefill_params.h"));
        Map<String, Integer> expected = Map.of("tma", TensorMaps.PAGED_TMA_OFFSET, "box_rows",
                TensorMaps.PAGED_BOX_ROWS_OFFSET, "k_map", TensorMaps.K_MAP_OFFSET, "v_map", TensorMaps.V_MAP_OFFSET);
        Matcher off = Pattern.compile("offsetof\\(PagedPrefillSm90Params,\\s*(\\w+)\\)\\s*==\\s*(\\d+)").matcher(text);
        int checked = 0;
        while (off.find()) {
            assertEquals(expected.get(off.group(1)), Integer.parseInt(off.group(2)), off.group(1));
            checked++;
        }
        assertEquals(4, checked);
        Matcher size = Pattern.compile("sizeof\\(PagedPrefillSm90Params\\)\\s*==\\s*(\\d+)").matcher(text);
        assertTrue(size.find());
        assertEquals(TensorMaps.SIZE, Integer.parseInt(size.group(1)));
        assertEquals(PagedPrefillKernel.LAYOUT.size(), TensorMaps.PAGED_TMA_OFFSET, "the common block comes first");
    }

    @Test
    void pagedBoxesLieInsideOnePage() {
        assertEquals(16, TensorMaps.pagedBoxRows(16, 128));
        assertEquals(128, TensorMaps.pagedBoxRows(256, 128));
        assertEquals(16, TensorMaps.pagedBoxRows(16, 80));
        assertEquals(8, TensorMaps.pagedBoxRows(24, 128));
        assertEquals(0, TensorMaps.pagedBoxRows(1, 128), "pages of one token: cp.async");
        assertEquals(0, TensorMaps.pagedBoxRows(7, 128));
        assertEquals(0, TensorMaps.pagedBoxRows(12, 128), "4 | 12 but boxes need 8-row multiples");
        for (int ps = 1; ps <= 512; ps++) {
            int r = TensorMaps.pagedBoxRows(ps, 128);
            assertTrue(r == 0 || (ps % r == 0 && 128 % r == 0 && r >= 8 && Integer.bitCount(r) == 1), "page " + ps);
        }
    }

    @Test
    void pagedPoolMap() {
        // pools [numPages=50, pageSize=16, Hkv=8, D=128] dense: tokens 8 * 128 elements apart, heads 128
        KernelStruct p = PagedPrefillKernel.LAYOUT.newStruct().set("k_pages", 0x7000_0000L).set("v_pages", 0x7100_0000L)
                .set("hkv", 8).set("head_dim", 128).set("page_size", 16).set("kv_row_stride", 1024)
                .set("kv_head_stride", 128);
        TensorMaps.Geometry k = TensorMaps.pagedGeometry(p, "k_pages", 50, 16);
        assertEquals(0x7000_0000L, k.address());
        assertArrayEquals(new long[] {128, 16, 8, 50}, k.dims());
        assertArrayEquals(new long[] {2048, 256, 2048 * 16}, k.strides());
        assertArrayEquals(new int[] {64, 16, 1, 1}, k.box());
        assertEquals(0x7100_0000L, TensorMaps.pagedGeometry(p, "v_pages", 50, 16).address());
        // no box fits pages of 12 tokens: the block carries tma = 0 and no maps, whatever the driver
        p.set("page_size", 12);
        byte[] common = p.toBytes();
        byte[] block = TensorMaps.pagedSm90Parameters(common, 50, 128);
        assertEquals(TensorMaps.SIZE, block.length);
        assertArrayEquals(common, Arrays.copyOf(block, common.length));
        for (int i = TensorMaps.PAGED_TMA_OFFSET; i < TensorMaps.SIZE; i++) {
            assertEquals(0, block[i], "byte " + i);
        }
    }

    private static TensorMaps.Geometry g(long address) {
        return new TensorMaps.Geometry(address, new long[] {128, 1000, 8, 2}, new long[] {2048, 256, 2048000},
                new int[] {64, 128, 1, 1});
    }

    @Test
    void cacheEncodesEachGeometryOnceAndEvictsTheLeastRecent() {
        java.util.List<Long> calls = new java.util.ArrayList<>();
        TensorMaps.MapCache cache = new TensorMaps.MapCache(2, geometry -> {
            calls.add(geometry.address());
            byte[] map = new byte[TensorMaps.MAP_BYTES];
            Arrays.fill(map, (byte) geometry.address());
            return geometry.address() == 99 ? null : map;
        });
        byte[] first = cache.get(g(1), g(2));
        assertEquals(2 * TensorMaps.MAP_BYTES, first.length);
        assertEquals(1, first[0], "K map first");
        assertEquals(2, first[TensorMaps.MAP_BYTES], "then the V map");
        assertArrayEquals(first, cache.get(g(1), g(2)), "equal geometry (new arrays) hits");
        assertEquals(java.util.List.of(1L, 2L), calls);
        cache.get(g(3), g(4));
        cache.get(g(1), g(2)); // (1, 2) most recent: (3, 4) goes next
        cache.get(g(5), g(6));
        assertEquals(2, cache.size());
        calls.clear();
        cache.get(g(1), g(2));
        cache.get(g(3), g(4));
        assertEquals(java.util.List.of(3L, 4L), calls, "(1, 2) stayed, (3, 4) was evicted");
        assertEquals(null, cache.get(g(7), g(99)), "a refused map is not a hit");
        calls.clear();
        assertEquals(null, cache.get(g(7), g(99)));
        assertEquals(java.util.List.of(7L, 99L), calls, "and is not cached");
    }
}
