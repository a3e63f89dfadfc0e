package org.flashdjl.ops.cuda;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The TMA tensor maps of the Hopper flash kernels: {@code struct FlashFwdSm90Params} ({@code flash_params.h}) is the
 * common {@link FlashAttention#LAYOUT} block, a flag, and a {@code CUtensorMap} each for K and V, which only the
 * driver's {@code cuTensorMapEncodeTiled} can write (called through JNA direct mapping: JCuda 12.6 has no binding
 * for it).
 *
 * <p>Each map is rank 4, innermost first: {@code {D, rows, heads, batch}} with the tensor's row, head and batch
 * strides in bytes, box {@code {64, Bc, 1, 1}} ({@code Bc} = the kernel's key tile), 128-byte swizzle (the kernels'
 * shared-memory layout), zero fill out of bounds, the bits copied unconverted (16-bit elements). Dense calls bound the
 * rows by {@code Lk}; varlen calls leave them unbounded (a sequence's key 0 is row {@code cu_seqlens_k[b]}, which only
 * the device reads): the kernels load only whole key tiles of a sequence through a map, and the last partial tile
 * and value rows that the mask hides through {@code cp.async} with zero fill, so a map's bounds never decide what is
 * read. When the driver refuses a map (it checks alignment and strides) the call runs with {@code tma = 0}: the same
 * results through {@code cp.async} only.
 *
 * <p>The Hopper paged prefill kernels take {@code struct PagedPrefillSm90Params} ({@code paged_prefill_params.h}): the
 * {@link PagedPrefillKernel#LAYOUT} block, the flag, the box rows, and maps of the K and V pools, rank 4
 * {@code {D, pageSize, Hkv, numPages}} with box {@code {64, boxRows, 1, 1}}: {@code boxRows} is the largest power of
 * two from 8 to 256 that divides both the page size and the key tile ({@link #pagedBoxRows}), so each box lies inside
 * one page; page sizes without one run with {@code tma = 0}.
 */
public final class TensorMaps {

    /** {@code offsetof(FlashFwdSm90Params, tma)}. */
    static final int TMA_OFFSET = 240;
    /** {@code offsetof(FlashFwdSm90Params, k_map)}. */
    static final int K_MAP_OFFSET = 256;
    /** {@code offsetof(FlashFwdSm90Params, v_map)}. */
    static final int V_MAP_OFFSET = 384;
    /** {@code sizeof(FlashFwdSm90Params)}. */
    static final int SIZE = 512;
    /** {@code offsetof(PagedPrefillSm90Params, tma)}. */
    static final int PAGED_TMA_OFFSET = 192;
    /** {@code offsetof(PagedPrefillSm90Params, box_rows)}. */
    static final int PAGED_BOX_ROWS_OFFSET = 196;
    /** {@code sizeof(CUtensorMap)}. */
    static final int MAP_BYTES = 128;

    /** {@code -Dflashdjl.flash.tma=false} runs the Hopper kernels with every tile through cp.async (A/B runs). */
    static final String TMA_PROPERTY = "flashdjl.flash.tma";

    // CUtensorMapDataType / Interleave / Swizzle / L2promotion / FloatOOBfill (cuda.h)
    private static final int DATA_TYPE_UINT16 = 1;
    private static final int INTERLEAVE_NONE = 0;
    private static final int SWIZZLE_128B = 3;
    private static final int L2_PROMOTION_256B = 3;
    private static final int OOB_FILL_ZERO = 0;
    /** A box's innermost extent: 64 two-byte elements = one 128-byte swizzle row. */
    static final int BOX_COLUMNS = 64;

    private static final Logger logger = LoggerFactory.getLogger(TensorMaps.class);
    private static final int[] ELEMENT_STRIDES = {1, 1, 1, 1};
    private static final AtomicLong MAPPED = new AtomicLong();
    private static final AtomicLong ENCODED = new AtomicLong();
    private static final AtomicLong REFUSED = new AtomicLong();
    private static final MapCache CACHE = new MapCache(256, TensorMaps::encode);
    /** Each thread's 64-byte aligned scratch for the driver to write a map into. */
    private static final ThreadLocal<Pointer> SCRATCH = ThreadLocal.withInitial(() -> new Memory(MAP_BYTES + 64)
            .align(64));

    private TensorMaps() {}

    /**
     * Returns how many Hopper flash launches carried tensor maps (TMA on).
     *
     * @return the count since the JVM started
     */
    public static long mappedLaunches() {
        return MAPPED.get();
    }

    /**
     * Returns how many tensor maps this process has encoded for Hopper flash launches (two per launch with TMA
     * whose K / V geometry was not among the 256 most recent ones).
     *
     * @return the count since the JVM started
     */
    public static long encodedMaps() {
        return ENCODED.get();
    }

    /**
     * Returns how many tensor maps the driver refused (those launches ran with {@code cp.async} only), or could not
     * be encoded because the driver has no {@code cuTensorMapEncodeTiled}.
     *
     * @return the count since the JVM started
     */
    public static long refusedMaps() {
        return REFUSED.get();
    }

    /**
     * The geometry of one map (innermost first), as handed to {@code cuTensorMapEncodeTiled}.
     *
     * @param address the tensor's base address
     * @param dims {D, rows, heads, batch}
     * @param strides bytes between rows, heads and batch entries; a size-1 dimension gets the stride of the one
     *     before it (never used, but the driver wants a multiple of 16 below 2^40)
     * @param box {64, key tile, 1, 1}
     */
    record Geometry(long address, long[] dims, long[] strides, int[] box) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Geometry g && address == g.address && Arrays.equals(dims, g.dims)
                    && Arrays.equals(strides, g.strides) && Arrays.equals(box, g.box);
        }

        @Override
        public int hashCode() {
            return (Long.hashCode(address) * 31 + Arrays.hashCode(dims)) * 31 + Arrays.hashCode(strides) * 7
                    + Arrays.hashCode(box);
        }

        @Override
        public String toString() {
            return "Geometry{0x" + Long.toHexString(address) + " dims " + Arrays.toString(dims) + " strides "
                    + Arrays.toString(strides) + " box " + Arrays.toString(box) + "}";
        }
    }

    /**
     * Computes the K or V map's geometry of a call from its {@code FlashFwdParams}.
     *
     * @param params the call's parameter block
     * @param tensor "k" or "v"
     * @param keyTile the kernel's key tile ({@code <kernel>_cfg[3]})
     * @return the geometry
     */
    static Geometry geometry(KernelStruct params, String tensor, int keyTile) {
        boolean varlen = params.get("cu_seqlens_k").longValue() != 0;
        long d = params.get("head_dim").longValue();
        long rows = varlen ? Integer.MAX_VALUE : params.get("lk").longValue();
        long heads = params.get("hkv").longValue();
        long batch = varlen ? 1 : params.get("batch").longValue();
        long rowBytes = 2 * params.get(tensor + "_row_stride").longValue();
        long headBytes = heads > 1 ? 2 * params.get(tensor + "_head_stride").longValue() : rowBytes;
        long batchBytes = batch > 1 ? 2 * params.get(tensor + "_batch_stride").longValue() : headBytes;
        return new Geometry(params.get(tensor).longValue(), new long[] {d, rows, heads, batch},
                new long[] {rowBytes, headBytes, batchBytes}, new int[] {BOX_COLUMNS, keyTile, 1, 1});
    }

    /**
     * Builds the Hopper kernels' parameter block: the call's {@code FlashFwdParams}, then the K and V maps (or
     * {@code tma = 0} where TMA is off or the driver refused a map).
     *
     * @param flashParams the packed {@code FlashFwdParams} ({@link FlashAttention#LAYOUT})
     * @param keyTile the kernel's key tile
     * @return the packed {@code FlashFwdSm90Params}
     */
    static byte[] sm90Parameters(byte[] flashParams, int keyTile) {
        ByteBuffer block = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        block.put(flashParams);
        KernelStruct params = FlashAttention.LAYOUT.read(flashParams);
        if (enabled() && params.get("lk").longValue() > 0 && params.get("hkv").longValue() > 0) {
            putMaps(block, TMA_OFFSET, geometry(params, "k", keyTile), geometry(params, "v", keyTile));
        }
        return block.array();
    }

    /**
     * Returns the tokens per box of a paged map: the largest power of two from 8 to 256 that divides both the page
     * size and the kernel's key tile, so that a whole key tile is {@code keyTile / boxRows} boxes, each inside one
     * page (the 128-byte swizzle needs boxes of 8-row multiples in shared memory).
     *
     * @param pageSize tokens per page
     * @param keyTile the kernel's key tile
     * @return the box rows, or 0 when none fits (the call then runs with cp.async only)
     */
    static int pagedBoxRows(int pageSize, int keyTile) {
        for (int r = 256; r >= 8; r /= 2) {
            if (pageSize % r == 0 && keyTile % r == 0) {
                return r;
            }
        }
        return 0;
    }

    /**
     * Computes the map geometry of a K or V page pool from a call's {@code PagedPrefillParams}.
     *
     * @param params the call's parameter block ({@link PagedPrefillKernel#LAYOUT})
     * @param pool "k_pages" or "v_pages"
     * @param numPages the pool's pages
     * @param boxRows tokens per box ({@link #pagedBoxRows})
     * @return the geometry
     */
    static Geometry pagedGeometry(KernelStruct params, String pool, long numPages, int boxRows) {
        long d = params.get("head_dim").longValue();
        long pageSize = params.get("page_size").longValue();
        long heads = params.get("hkv").longValue();
        long rowBytes = 2 * params.get("kv_row_stride").longValue();
        long headBytes = heads > 1 ? 2 * params.get("kv_head_stride").longValue() : rowBytes;
        long pageBytes = numPages > 1 ? pageSize * rowBytes : headBytes; // pages dense in the pool
        return new Geometry(params.get(pool).longValue(), new long[] {d, pageSize, heads, numPages},
                new long[] {rowBytes, headBytes, pageBytes}, new int[] {BOX_COLUMNS, boxRows, 1, 1});
    }

    /**
     * Builds the Hopper paged prefill kernels' parameter block: the call's {@code PagedPrefillParams}, then the flag,
     * the box rows and the maps of the K and V pools (or {@code tma = 0} where TMA is off, no box fits the page size,
     * or the driver refused a map).
     *
     * @param pagedParams the packed {@code PagedPrefillParams} ({@link PagedPrefillKernel#LAYOUT})
     * @param numPages the pools' pages
     * @param keyTile the kernel's key tile
     * @return the packed {@code PagedPrefillSm90Params}
     */
    static byte[] pagedSm90Parameters(byte[] pagedParams, long numPages, int keyTile) {
        ByteBuffer block = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        block.put(pagedParams);
        KernelStruct params = PagedPrefillKernel.LAYOUT.read(pagedParams);
        int boxRows = pagedBoxRows(params.get("page_size").intValue(), keyTile);
        if (enabled() && boxRows > 0 && numPages > 0 && params.get("hkv").longValue() > 0
                && putMaps(block, PAGED_TMA_OFFSET, pagedGeometry(params, "k_pages", numPages, boxRows),
                        pagedGeometry(params, "v_pages", numPages, boxRows))) {
            block.putInt(PAGED_BOX_ROWS_OFFSET, boxRows);
        }
        return block.array();
    }

    private static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty(TMA_PROPERTY));
    }

    // Writes tma = 1 and the K / V maps into a block; false (block unchanged) when either map was refused.
    private static boolean putMaps(ByteBuffer block, int tmaOffset, Geometry k, Geometry v) {
        byte[] maps = CACHE.get(k, v);
        if (maps == null) {
            return false;
        }
        MAPPED.incrementAndGet();
        block.putInt(tmaOffset, 1);
        block.put(K_MAP_OFFSET, maps);
        return true;
    }

    /**
     * The K and V maps of recent geometries (a map is a pure function of its geometry, and the driver call costs
     * microseconds: decode-time calls such as the cascade's prefix repeat the same K / V every step).
     */
    static final class MapCache {
        private final Function<Geometry, byte[]> encoder;
        private final LinkedHashMap<List<Geometry>, byte[]> maps;

        /**
         * Creates a cache.
         *
         * @param capacity the geometry pairs kept (least recently used evicted)
         * @param encoder one map's 128 bytes, or null when refused
         */
        MapCache(int capacity, Function<Geometry, byte[]> encoder) {
            this.encoder = encoder;
            this.maps = new LinkedHashMap<>(16, 0.75f, true) { // access order: the eldest is the least recently used
                @Override
                protected boolean removeEldestEntry(Map.Entry<List<Geometry>, byte[]> eldest) {
                    return size() > capacity;
                }
            };
        }

        /** Returns the K map then the V map (256 bytes), encoding them on a miss; null if either was refused. */
        synchronized byte[] get(Geometry k, Geometry v) {
            List<Geometry> key = List.of(k, v);
            byte[] hit = maps.get(key);
            if (hit != null) {
                return hit;
            }
            byte[] km = encoder.apply(k);
            byte[] vm = km == null ? null : encoder.apply(v);
            if (vm == null) {
                return null; // refused: not cached, counted by encode
            }
            byte[] both = Arrays.copyOf(km, 2 * MAP_BYTES);
            System.arraycopy(vm, 0, both, MAP_BYTES, MAP_BYTES);
            maps.put(key, both);
            return both;
        }

        synchronized int size() {
            return maps.size();
        }
    }

    // The map's 128 bytes, or null if the driver refused it or has no cuTensorMapEncodeTiled.
    private static byte[] encode(Geometry g) {
        if (!Driver.LOADED) {
            REFUSED.incrementAndGet();
            return null;
        }
        Pointer map = SCRATCH.get();
        int r = Driver.cuTensorMapEncodeTiled(map, DATA_TYPE_UINT16, 4, g.address(), g.dims(), g.strides(), g.box(),
                ELEMENT_STRIDES, INTERLEAVE_NONE, SWIZZLE_128B, L2_PROMOTION_256B, OOB_FILL_ZERO);
        if (r != 0) {
            logger.debug("cuTensorMapEncodeTiled returned {} for dims {} strides {} box {}: cp.async only", r,
                    Arrays.toString(g.dims()), Arrays.toString(g.strides()), Arrays.toString(g.box()));
            REFUSED.incrementAndGet();
            return null;
        }
        ENCODED.incrementAndGet();
        return map.getByteArray(0, MAP_BYTES);
    }

    /** The driver entry point, bound once by JNA direct mapping (a call costs well under a microsecond). */
    private static final class Driver {
        static final boolean LOADED = load();

        private Driver() {}

        private static boolean load() {
            for (String name : new String[] {"libcuda.so.1", "cuda"}) {
                try {
                    Native.register(Driver.class, NativeLibrary.getInstance(name));
                    return true;
                } catch (UnsatisfiedLinkError | IllegalArgumentException e) {
                    logger.debug("{}: {}", name, e.getMessage());
                }
            }
            logger.warn("cuTensorMapEncodeTiled not found in the CUDA driver: the Hopper flash kernels load K and V "
                    + "with cp.async only");
            return false;
        }

        static native int cuTensorMapEncodeTiled(Pointer tensorMap, int dataType, int rank, long globalAddress,
                long[] globalDim, long[] globalStrides, int[] boxDim, int[] elementStrides, int interleave,
                int swizzle, int l2Promotion, int oobFill);
    }
}
