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
        if (!"false".equalsIgnoreCase(System.getProperty(TMA_PROPERTY)) && params.get("lk").longValue() > 0
                && params.get("hkv").longValue() > 0) {
            Geometry k = geometry(params, "k", keyTile);
            Geometry v = geometry(params, "v", keyTile);
            byte[] maps = CACHE.get(k, v);
            if (maps != null) {
                MAPPED.incrementAndGet();
                block.putInt(TMA_OFFSET, 1);
                block.put(K_MAP_OFFSET, maps);
            }
        }
        return block.array();
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
