package org.flashdjl.ops.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.Objects;

/**
 * The merge-state kernels ({@code ops/src/main/cuda/merge_state.cu}) over raw device memory: the GPU counterpart
 * of {@link org.flashdjl.ops.cascade.MergeState}, with exactly its semantics ({@code s = logaddexp(s_a, s_b)},
 * {@code v = v_a e^(s_a - s) + v_b e^(s_b - s)}, two {@code -inf} states merge to {@code (0, -inf)}, never NaN;
 * fp32 arithmetic, {@code v} keeps its dtype). A state whose weight is 0 is never read, so an empty state's
 * {@code v} may hold anything.
 *
 * <pre>{@code
 * MergeStateKernel.mergeStateInPlace(v, s, vOther, sOther).run();   // v [N, H, D], s [N, H] fp32
 * MergeStateKernel.mergeState(vA, sA, vB, sB, vOut, sOut).run();   // out of place
 * MergeStateKernel.mergeStates(vn, sn, vOut, sOut).run();          // vn [N, n, H, D], sn [N, n, H]
 * }</pre>
 *
 * <p>Every check runs in the factory methods, before any CUDA call; {@link #run()} launches one kernel on the
 * legacy default stream (in order with DJL's ops and the other launchers here). Pair tensors are [N, H, D] with
 * LSE [N, H]; any rank works where the axes before D can be grouped into (rows, heads) with one stride each (e.g.
 * a contiguous bhsd output [B, H, L, D] with its LSE [B, H, L], or [N, D] with [N]). Strides are free (head-dim
 * stride 1); 16-byte aligned tensors with D and strides multiples of 16 bytes get the vectorized kernel, the rest
 * a scalar one; a stacked merge of few rows and 4..1024 states (the split-KV merge) gets the "wide" kernel, one
 * block per row with the states spread over its threads. v: fp16, bf16 or fp32; s: fp32 natural log.
 */
public final class MergeStateKernel {

    /** The fatbin resource. */
    public static final String MODULE = "org/flashdjl/ops/cuda/merge_state.fatbin";

    /** Threads per block of every merge kernel (the {@code kThreads} of merge_state.cu). */
    public static final int THREADS = 256;

    /** {@code struct MergeStateParams} of {@code merge_params.h}. */
    public static final KernelStruct.Layout LAYOUT = KernelStruct.Layout.of("MergeStateParams",
            "v_a", KernelStruct.Kind.POINTER, "s_a", KernelStruct.Kind.POINTER,
            "v_b", KernelStruct.Kind.POINTER, "s_b", KernelStruct.Kind.POINTER,
            "v_out", KernelStruct.Kind.POINTER, "s_out", KernelStruct.Kind.POINTER,
            "v_a_row_stride", KernelStruct.Kind.INT64, "v_a_state_stride", KernelStruct.Kind.INT64,
            "v_a_head_stride", KernelStruct.Kind.INT64,
            "s_a_row_stride", KernelStruct.Kind.INT64, "s_a_state_stride", KernelStruct.Kind.INT64,
            "s_a_head_stride", KernelStruct.Kind.INT64,
            "v_b_row_stride", KernelStruct.Kind.INT64, "v_b_head_stride", KernelStruct.Kind.INT64,
            "s_b_row_stride", KernelStruct.Kind.INT64, "s_b_head_stride", KernelStruct.Kind.INT64,
            "v_out_row_stride", KernelStruct.Kind.INT64, "v_out_head_stride", KernelStruct.Kind.INT64,
            "s_out_row_stride", KernelStruct.Kind.INT64, "s_out_head_stride", KernelStruct.Kind.INT64,
            "rows", KernelStruct.Kind.INT32, "heads", KernelStruct.Kind.INT32,
            "head_dim", KernelStruct.Kind.INT32, "states", KernelStruct.Kind.INT32);

    /** The stacked merge spreads states over threads (one block per row) from this many states... */
    static final int WIDE_MIN_STATES = 4;

    /** ... up to this many (its shared-memory weight table)... */
    static final int WIDE_MAX_STATES = 1024;

    /** ... when there are at most this many (row, head) pairs (few rows: the split-KV merge). */
    static final long WIDE_MAX_ROWS = 4096;

    private static final Logger logger = LoggerFactory.getLogger(MergeStateKernel.class);

    private final String kernelName;
    private final KernelStruct params;
    private final int device;
    private final long gridX;
    private boolean synchronize;

    private MergeStateKernel(String kernelName, KernelStruct params, int device, long gridX) {
        this.kernelName = kernelName;
        this.params = params;
        this.device = device;
        this.gridX = gridX;
    }

    /**
     * Prepares an out-of-place (or, with {@code vOut == vA} and {@code sOut == sA}, in-place) merge of two states.
     *
     * @param vA state a's output [N, H, D] (or another grouping, see the class doc), fp16/bf16/fp32
     * @param sA state a's LSE [N, H] fp32
     * @param vB state b's output, the shape and dtype of vA
     * @param sB state b's LSE, the shape of sA
     * @param vOut the merged output, the shape and dtype of vA; may be vA or vB itself, must not overlap them
     *     otherwise
     * @param sOut the merged LSE, the shape of sA, or null when not wanted; may be sA or sB itself
     * @return the call, validated
     * @throws IllegalArgumentException naming the bad argument and the allowed values
     */
    public static MergeStateKernel mergeState(DeviceTensor vA, DeviceTensor sA, DeviceTensor vB, DeviceTensor sB,
            DeviceTensor vOut, DeviceTensor sOut) {
        Objects.requireNonNull(vA, "vA");
        Objects.requireNonNull(sA, "sA");
        Objects.requireNonNull(vB, "vB");
        Objects.requireNonNull(sB, "sB");
        Objects.requireNonNull(vOut, "vOut");
        DeviceTensor[] all = {vA, sA, vB, sB, vOut, sOut};
        String[] names = {"vA", "sA", "vB", "sB", "vOut", "sOut"};
        int device = checkDevices(names, all);
        DeviceDataType type = vA.getDataType();
        checkValueType("vA", type);
        for (int i : new int[] {2, 4}) {
            if (all[i].getDataType() != type) {
                throw new IllegalArgumentException(names[i] + " has dtype " + all[i].getDataType() + " but vA has "
                        + type + "; the pair kernel keeps one dtype (fp16, bf16 or fp32)");
            }
            if (!Arrays.equals(all[i].getShape(), vA.getShape())) {
                throw new IllegalArgumentException(names[i] + " " + DeviceTensor.format(all[i].getShape())
                        + " must have vA's shape " + DeviceTensor.format(vA.getShape()));
            }
        }
        for (int i : new int[] {1, 3, 5}) {
            if (all[i] != null) {
                checkLse(names[i], all[i], vA);
            }
        }
        checkAlias("vOut", vOut, "vA", vA);
        checkAlias("vOut", vOut, "vB", vB);
        if (sOut != null) {
            checkAlias("sOut", sOut, "sA", sA);
            checkAlias("sOut", sOut, "sB", sB);
            checkAlias("sOut", sOut, "vOut", vOut);
        }
        int headDim = headDim(vA);
        long[] idx = Arrays.copyOf(vA.getShape(), vA.rank() - 1);
        Grouping g = Grouping.find(idx, new DeviceTensor[] {vA, vB, vOut}, new DeviceTensor[] {sA, sB, sOut},
                names);
        KernelStruct p = LAYOUT.newStruct();
        p.set("v_a", vA.getAddress()).set("s_a", sA.getAddress()).set("v_b", vB.getAddress())
                .set("s_b", sB.getAddress()).set("v_out", vOut.getAddress())
                .set("s_out", sOut == null ? 0 : sOut.getAddress());
        p.set("v_a_row_stride", g.rowStride(vA)).set("v_a_head_stride", g.headStride(vA));
        p.set("s_a_row_stride", g.rowStride(sA)).set("s_a_head_stride", g.headStride(sA));
        p.set("v_b_row_stride", g.rowStride(vB)).set("v_b_head_stride", g.headStride(vB));
        p.set("s_b_row_stride", g.rowStride(sB)).set("s_b_head_stride", g.headStride(sB));
        p.set("v_out_row_stride", g.rowStride(vOut)).set("v_out_head_stride", g.headStride(vOut));
        if (sOut != null) {
            p.set("s_out_row_stride", g.rowStride(sOut)).set("s_out_head_stride", g.headStride(sOut));
        }
        p.set("rows", g.rows).set("heads", g.heads).set("head_dim", headDim).set("states", 2);
        boolean vec = vectorizable(type, headDim, new DeviceTensor[] {vA, vB, vOut}, g);
        String name = "merge_state_" + type.shortName() + (vec ? "_vec" : "_scalar");
        return new MergeStateKernel(name, p, device, grid(type, vec, headDim, g));
    }

    /**
     * Prepares an in-place merge: {@code (v, s) <- merge((v, s), (vOther, sOther))}.
     *
     * @param v the output updated in place [N, H, D]
     * @param s its LSE, updated in place [N, H] fp32
     * @param vOther the other output, v's shape and dtype
     * @param sOther the other LSE, s's shape
     * @return the call, validated
     */
    public static MergeStateKernel mergeStateInPlace(DeviceTensor v, DeviceTensor s, DeviceTensor vOther,
            DeviceTensor sOther) {
        return mergeState(v, s, vOther, sOther, v, s);
    }

    /**
     * Prepares the merge of {@code n} states stacked along axis 1 (FlashInfer's {@code merge_states}).
     *
     * @param v the states [N, n, H, D]: fp16, bf16 or fp32
     * @param s their LSEs [N, n, H] fp32
     * @param vOut the merged output [N, H, D]: v's dtype, or fp16/bf16 when v is fp32; must not overlap v or s
     * @param sOut the merged LSE [N, H] fp32, or null when not wanted
     * @return the call, validated
     * @throws IllegalArgumentException naming the bad argument and the allowed values
     */
    public static MergeStateKernel mergeStates(DeviceTensor v, DeviceTensor s, DeviceTensor vOut,
            DeviceTensor sOut) {
        Objects.requireNonNull(v, "v");
        Objects.requireNonNull(s, "s");
        Objects.requireNonNull(vOut, "vOut");
        String[] names = {"v", "s", "vOut", "sOut"};
        int device = checkDevices(names, new DeviceTensor[] {v, s, vOut, sOut});
        DeviceDataType in = v.getDataType();
        DeviceDataType out = vOut.getDataType();
        checkValueType("v", in);
        if (out != in && !(in == DeviceDataType.FP32 && (out == DeviceDataType.FP16 || out == DeviceDataType.BF16))) {
            throw new IllegalArgumentException("vOut dtype " + out + " with v dtype " + in + " is not supported;"
                    + " allowed (v -> vOut): fp16 -> fp16, bf16 -> bf16, fp32 -> fp32, fp32 -> fp16, fp32 -> bf16");
        }
        if (v.rank() != 4) {
            throw new IllegalArgumentException("v must be [N, n, H, D] (states along axis 1), got "
                    + DeviceTensor.format(v.getShape()));
        }
        long[] vs = v.getShape();
        if (vs[1] < 1) {
            throw new IllegalArgumentException("mergeStates needs at least one state along axis 1, got v "
                    + DeviceTensor.format(vs));
        }
        long[] sShape = {vs[0], vs[1], vs[2]};
        long[] oShape = {vs[0], vs[2], vs[3]};
        if (!Arrays.equals(s.getShape(), sShape) || s.getDataType() != DeviceDataType.FP32) {
            throw new IllegalArgumentException("s must be fp32 " + DeviceTensor.format(sShape) + " [N, n, H], got "
                    + s.getDataType() + " " + DeviceTensor.format(s.getShape()));
        }
        if (!Arrays.equals(vOut.getShape(), oShape)) {
            throw new IllegalArgumentException("vOut must be " + DeviceTensor.format(oShape) + " [N, H, D], got "
                    + DeviceTensor.format(vOut.getShape()));
        }
        if (sOut != null && (!Arrays.equals(sOut.getShape(), new long[] {vs[0], vs[2]})
                || sOut.getDataType() != DeviceDataType.FP32)) {
            throw new IllegalArgumentException("sOut must be fp32 [" + vs[0] + ", " + vs[2] + "] [N, H], got "
                    + sOut.getDataType() + " " + DeviceTensor.format(sOut.getShape()));
        }
        checkDisjoint("vOut", vOut, "v", v);
        checkDisjoint("vOut", vOut, "s", s);
        if (sOut != null) {
            checkDisjoint("sOut", sOut, "v", v);
            checkDisjoint("sOut", sOut, "s", s);
            checkDisjoint("sOut", sOut, "vOut", vOut);
        }
        int headDim = headDim(v);
        checkStrides("v", v, true);
        checkStrides("s", s, false);
        checkStrides("vOut", vOut, true);
        if (sOut != null) {
            checkStrides("sOut", sOut, false);
        }
        int rows = toInt("N", vs[0]);
        int states = toInt("n (states)", vs[1]);
        int heads = toInt("H", vs[2]);
        Grouping g = new Grouping(rows, heads, 0, 0);
        KernelStruct p = LAYOUT.newStruct();
        p.set("v_a", v.getAddress()).set("s_a", s.getAddress()).set("v_out", vOut.getAddress())
                .set("s_out", sOut == null ? 0 : sOut.getAddress());
        p.set("v_a_row_stride", v.stride(0)).set("v_a_state_stride", v.stride(1)).set("v_a_head_stride", v.stride(2));
        p.set("s_a_row_stride", s.stride(0)).set("s_a_state_stride", s.stride(1)).set("s_a_head_stride", s.stride(2));
        p.set("v_out_row_stride", vOut.stride(0)).set("v_out_head_stride", vOut.stride(1));
        if (sOut != null) {
            p.set("s_out_row_stride", sOut.stride(0)).set("s_out_head_stride", sOut.stride(1));
        }
        p.set("rows", rows).set("heads", heads).set("head_dim", headDim).set("states", states);
        boolean vec = vectorizable(in, headDim, new DeviceTensor[] {v}, null)
                && aligned16(vOut) && stridesMultipleOf(vOut, 16 / in.byteSize());
        long pairs = (long) rows * heads;
        boolean wide = vec && headDim / (16 / in.byteSize()) <= THREADS && states >= WIDE_MIN_STATES
                && states <= WIDE_MAX_STATES && pairs <= WIDE_MAX_ROWS;
        String name = "merge_states_" + in.shortName() + "_" + out.shortName()
                + (wide ? "_wide" : vec ? "_vec" : "_scalar");
        return new MergeStateKernel(name, p, device, wide ? pairs : grid(in, vec, headDim, g));
    }

    /**
     * Waits for the kernel in {@link #run()} and surfaces asynchronous errors there (tests).
     *
     * @param synchronize true to call {@code cuCtxSynchronize} after the launch
     * @return this
     */
    public MergeStateKernel optSynchronize(boolean synchronize) {
        this.synchronize = synchronize;
        return this;
    }

    /**
     * Returns the kernel this call launches.
     *
     * @return e.g. {@code "merge_state_fp16_vec"}
     */
    public String kernelName() {
        return kernelName;
    }

    /**
     * Returns the parameter block.
     *
     * @return the struct
     */
    public KernelStruct getParams() {
        return params;
    }

    /**
     * Returns the number of blocks.
     *
     * @return grid x (0 for an empty merge, which launches nothing)
     */
    public long getGridX() {
        return gridX;
    }

    /**
     * Launches the kernel on the legacy default stream of the tensors' device.
     *
     * @throws IllegalStateException if CUDA is unavailable or the kernels are not built
     * @throws CudaException naming the driver call and kernel on a CUDA error
     */
    public void run() {
        KernelModule.Kernel kernel = KernelModule.get(MODULE, device).getKernel(kernelName);
        if (gridX == 0) {
            return;
        }
        if (logger.isTraceEnabled()) {
            logger.trace("launch {} grid {} {}", kernel, gridX, params);
        }
        kernel.launch((int) gridX, 1, 1, params.toBytes());
        if (synchronize) {
            CudaRuntime.synchronize(kernelName);
        }
    }

    /**
     * Returns how many (row, head) pairs one block merges for a head dim: the kernel's own rule.
     *
     * @param type the input dtype
     * @param vectorized whether the vectorized kernel runs
     * @param headDim D
     * @return rows per block
     */
    static int rowsPerBlock(DeviceDataType type, boolean vectorized, int headDim) {
        int width = vectorized ? 16 / type.byteSize() : 1;
        int chunks = (headDim + width - 1) / width;
        return THREADS / Math.min(chunks, THREADS);
    }

    private static long grid(DeviceDataType type, boolean vec, int headDim, Grouping g) {
        long pairs = (long) g.rows * g.heads;
        int rpb = rowsPerBlock(type, vec, headDim);
        long grid = (pairs + rpb - 1) / rpb;
        if (grid > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(pairs + " (row, head) pairs need " + grid
                    + " blocks, over the CUDA grid x limit " + Integer.MAX_VALUE + "; merge in slices");
        }
        return grid;
    }

    private static int checkDevices(String[] names, DeviceTensor[] all) {
        int device = all[0].getDevice();
        if (device < 0) {
            throw new IllegalArgumentException(names[0] + " is host memory; the merge kernels need CUDA device"
                    + " memory");
        }
        for (int i = 1; i < all.length; i++) {
            if (all[i] != null && all[i].getDevice() != device) {
                throw new IllegalArgumentException(names[i] + " is on " + where(all[i].getDevice()) + " but "
                        + names[0] + " is on cuda:" + device + "; all tensors must be on one device");
            }
        }
        return device;
    }

    private static String where(int device) {
        return device < 0 ? "the host" : "cuda:" + device;
    }

    private static void checkValueType(String name, DeviceDataType type) {
        if (type != DeviceDataType.FP16 && type != DeviceDataType.BF16 && type != DeviceDataType.FP32) {
            throw new IllegalArgumentException(name + " has dtype " + type + "; allowed: fp16, bf16, fp32");
        }
    }

    private static void checkLse(String name, DeviceTensor s, DeviceTensor v) {
        if (s.getDataType() != DeviceDataType.FP32) {
            throw new IllegalArgumentException(name + " must be fp32 (natural-log LSE), got " + s.getDataType());
        }
        long[] want = Arrays.copyOf(v.getShape(), v.rank() - 1);
        if (!Arrays.equals(s.getShape(), want)) {
            throw new IllegalArgumentException(name + " must have v's shape without its last axis "
                    + DeviceTensor.format(want) + ", got " + DeviceTensor.format(s.getShape()));
        }
    }

    private static int headDim(DeviceTensor v) {
        if (v.rank() < 2) {
            throw new IllegalArgumentException("v needs rank >= 2 ([..., D]), got " + DeviceTensor.format(v.getShape()));
        }
        long d = v.size(v.rank() - 1);
        if (d < 1 || d > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("head dim (last axis) must be in 1.." + Integer.MAX_VALUE + ", got "
                    + d);
        }
        return (int) d;
    }

    private static void checkStrides(String name, DeviceTensor t, boolean value) {
        t.checkNonNegativeStrides(name);
        int last = t.rank() - 1;
        if (value && t.size(last) > 1 && t.stride(last) != 1) {
            throw new IllegalArgumentException(name + " must have head-dim (last axis) stride 1, got strides "
                    + DeviceTensor.format(t.getStrides()));
        }
    }

    /** Byte range [start, end) a tensor's elements occupy (0, 0 when empty). */
    private static long[] span(DeviceTensor t) {
        if (t.numel() == 0) {
            return new long[] {0, 0};
        }
        long last = 0;
        for (int i = 0; i < t.rank(); i++) {
            last += (t.size(i) - 1) * t.stride(i);
        }
        return new long[] {t.getAddress(), t.getAddress() + (last + 1) * t.getDataType().byteSize()};
    }

    private static boolean overlaps(DeviceTensor a, DeviceTensor b) {
        long[] x = span(a);
        long[] y = span(b);
        return x[0] < y[1] && y[0] < x[1];
    }

    private static boolean sameView(DeviceTensor a, DeviceTensor b) {
        return a.getAddress() == b.getAddress() && a.getDataType() == b.getDataType()
                && Arrays.equals(a.getShape(), b.getShape()) && Arrays.equals(a.getStrides(), b.getStrides());
    }

    private static void checkAlias(String outName, DeviceTensor out, String inName, DeviceTensor in) {
        if (overlaps(out, in) && !sameView(out, in)) {
            throw new IllegalArgumentException(outName + " overlaps " + inName + " without being the same view"
                    + " (address, shape and strides); allowed: exactly " + inName + " (in place) or disjoint memory");
        }
    }

    private static void checkDisjoint(String outName, DeviceTensor out, String inName, DeviceTensor in) {
        if (overlaps(out, in)) {
            throw new IllegalArgumentException(outName + " overlaps " + inName + "; mergeStates writes out of place:"
                    + " give it separate memory");
        }
    }

    private static boolean aligned16(DeviceTensor t) {
        return t.getAddress() % 16 == 0;
    }

    private static boolean stridesMultipleOf(DeviceTensor t, int width) {
        for (int i = 0; i < t.rank() - 1; i++) {
            if (t.size(i) > 1 && t.stride(i) % width != 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean vectorizable(DeviceDataType type, int headDim, DeviceTensor[] vs, Grouping g) {
        int width = 16 / type.byteSize();
        if (headDim % width != 0) {
            return false;
        }
        for (DeviceTensor v : vs) {
            if (!aligned16(v) || !stridesMultipleOf(v, width)) {
                return false;
            }
            if (g != null && (g.rowStride(v) % width != 0 || g.headStride(v) % width != 0)) {
                return false;
            }
        }
        return true;
    }

    private static int toInt(String name, long value) {
        if (value > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " = " + value + " exceeds the kernels' int32 limit");
        }
        return (int) value;
    }

    /** The axes before D grouped into (rows, heads): axes [0, split) and [split, k), each with one stride. */
    private static final class Grouping {
        final int rows;
        final int heads;
        final int split;
        final int k;

        Grouping(int rows, int heads, int split, int k) {
            this.rows = rows;
            this.heads = heads;
            this.split = split;
            this.k = k;
        }

        static Grouping find(long[] idx, DeviceTensor[] values, DeviceTensor[] lses, String[] names) {
            for (int i = 0; i < values.length; i++) {
                checkStrides(names[2 * i], values[i], true);
                if (lses[i] != null) {
                    checkStrides(names[2 * i + 1], lses[i], false);
                }
            }
            int k = idx.length;
            if (k == 0) {
                throw new IllegalArgumentException("v needs at least one axis before the head dim");
            }
            for (int split = 1; split <= Math.max(1, k - 1); split++) {
                boolean ok = true;
                for (DeviceTensor t : values) {
                    ok &= mergeable(t, 0, split) && mergeable(t, split, k);
                }
                for (DeviceTensor t : lses) {
                    ok &= t == null || (mergeable(t, 0, split) && mergeable(t, split, k));
                }
                if (ok) {
                    long rows = 1;
                    long heads = 1;
                    for (int i = 0; i < split; i++) {
                        rows *= idx[i];
                    }
                    for (int i = split; i < k; i++) {
                        heads *= idx[i];
                    }
                    return new Grouping(toInt("rows", rows), toInt("heads", heads), split, k);
                }
            }
            throw new IllegalArgumentException("the axes before the head dim " + DeviceTensor.format(idx)
                    + " cannot be grouped into (rows, heads) with one stride each for every tensor ("
                    + String.join(", ", names) + "): pass [N, H, D] views with LSEs [N, H]");
        }

        /** Whether axes [from, to) of t collapse into one axis with one stride (size-1 axes are skipped). */
        private static boolean mergeable(DeviceTensor t, int from, int to) {
            int prev = -1;
            for (int i = from; i < to; i++) {
                if (t.size(i) == 1) {
                    continue;
                }
                if (prev >= 0 && t.stride(prev) != t.stride(i) * t.size(i)) {
                    return false;
                }
                prev = i;
            }
            return true;
        }

        private static long groupStride(DeviceTensor t, int from, int to) {
            if (to <= from) {
                return 0;
            }
            for (int i = to - 1; i >= from; i--) {
                if (t.size(i) > 1) {
                    return t.stride(i);
                }
            }
            return t.stride(to - 1);
        }

        long rowStride(DeviceTensor t) {
            return k == 0 ? t.stride(0) : groupStride(t, 0, split);
        }

        long headStride(DeviceTensor t) {
            return k == 0 ? t.stride(1) : split >= k ? 0 : groupStride(t, split, k);
        }
    }
}
