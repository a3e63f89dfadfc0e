package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The one dispatch table of the flash-attention forward kernels: (arch, dtype, head dim, variant) to a kernel and
 * the fatbin that holds it. On every arch: {@code flash_fwd_{fp16|bf16}_hd{D}_{plain|causal|general}}
 * ({@code flash_fwd.cu}, mma.sync, sm_80 and sm_90a code). On Hopper every variant of hd 64, 128 and 256 uses the
 * wgmma kernels {@code flash_fwd_sm90_{fp16|bf16}_hd{D}_{plain|causal|general|positioned|packed}}
 * ({@code flash_fwd_sm90.cu}, sm_90a only) unless {@code -Dflashdjl.flash.sm90=false} or that fatbin was not built.
 *
 * <p>The variant follows from the spec: {@code plain} when nothing masks or biases a score, {@code causal} for the
 * causal mask alone, {@code causal_alibi} for the causal mask with ALiBi and nothing else, {@code causal_softcap} for
 * the causal mask with softcap and nothing else (the two with their own kernels on Hopper at head dims 64 and 128, the
 * general kernel elsewhere), {@code general} for everything else (window, sinks, ALiBi, softcap alone or with any of
 * them).
 * GQA/MQA, varlen and the layout are runtime parameters of every kernel. Both arches use the same kernel names
 * today (the fatbin holds sm_80 and sm_90a code and the driver picks the device's); the table keeps the arch so a
 * Hopper-only kernel can be added without touching callers.
 */
public final class FlashDispatch {

    /** The GPU generations the fatbin has code for. */
    public enum Arch {
        /** Ampere and Ada (compute capability 8.x), and later GPUs through the compute_80 PTX. */
        SM80,
        /** Hopper (compute capability 9.0, sm_90a code). */
        SM90;

        /**
         * Maps a compute capability to an arch.
         *
         * @param computeCapability e.g. 90 for 9.0
         * @return the arch
         * @throws UnsupportedOperationException below 8.0, naming the supported arches
         */
        public static Arch of(int computeCapability) {
            if (computeCapability < 80) {
                throw new UnsupportedOperationException("flash attention needs compute capability >= 8.0; got "
                        + computeCapability / 10 + "." + computeCapability % 10 + "; supported: sm80 (8.x and later"
                        + " via PTX), sm90 (9.0)");
            }
            return computeCapability == 90 ? SM90 : SM80;
        }
    }

    /** Which kernel family a spec needs. */
    public enum Variant {
        /** No mask, ALiBi or softcap: every key is visible. */
        PLAIN,
        /** The bottom-right causal mask alone. */
        CAUSAL,
        /** Any of window, sinks (with a left window), ALiBi, softcap, and causal combined with them. */
        GENERAL,
        /**
         * The bottom-right causal mask with ALiBi, nothing else (the ALiBi models' self-attention). On Hopper at head
         * dims 64 and 128 its own kernels: the causal kernel's pipeline, persistent form included, with ALiBi's key
         * term on the tensor cores (0.97 of the causal kernel's TFLOP/s at hd 128, L 4096, against 0.85-0.88 on the
         * general kernel: docs/PERF.md, run 118); elsewhere the dispatch table maps it to the general kernel.
         */
        CAUSAL_ALIBI,
        /**
         * The bottom-right causal mask with softcap, nothing else (Gemma 2's and Grok's self-attention). On Hopper at
         * head dims 64 and 128 its own kernels: the causal kernel's pipeline, persistent form included, with the
         * general kernel's softcap walks; elsewhere the dispatch table maps it to the general kernel.
         */
        CAUSAL_SOFTCAP,
        /**
         * The general options at the call's own positions (a dense block of a longer sequence whose positions
         * change the result): the only variant that reads the mask's key offset and query shift.
         */
        POSITIONED,
        /**
         * Plain with GQA packing (Hopper kernels, head dims 64/128/256): one CTA computes the {@code Hq / Hkv} query
         * heads of a key/value head as rows of one tile, so that a few queries fill it and each key/value tile is
         * read once per key/value head. Never picked from a spec: {@link FlashAttention.Builder#optPackGqa} asks
         * for it, and calls fall back to {@link #PLAIN} where it has no kernel.
         */
        PACKED;

        /**
         * Picks the cheapest variant that computes a spec exactly for bottom-right aligned queries.
         *
         * @param spec the spec
         * @return the variant
         */
        public static Variant of(AttentionSpec spec) {
            return of(spec, false);
        }

        /**
         * Picks the cheapest variant that computes a spec exactly.
         *
         * @param spec the spec
         * @param positionsMatter true when the call's positions (not bottom-right aligned, or keys not from 0 with
         *     sinks) change what this spec computes ({@link FlashAttention.Builder#optPositions})
         * @return the variant
         */
        public static Variant of(AttentionSpec spec, boolean positionsMatter) {
            if (positionsMatter) {
                return POSITIONED;
            }
            boolean windowed = spec.getWindowLeft() >= 0 || spec.getWindowRight() >= 0;
            if (spec.isCausal() && spec.hasAlibi() && spec.getSoftcap() <= 0 && !windowed) {
                return CAUSAL_ALIBI;
            }
            // softcap alone stays on the general kernel: a plain-pipeline kernel for it read 2-4 % slower (run 128)
            if (spec.isCausal() && spec.getSoftcap() > 0 && !spec.hasAlibi() && !windowed) {
                return CAUSAL_SOFTCAP;
            }
            if (spec.hasAlibi() || spec.getSoftcap() > 0 || windowed) {
                return GENERAL;
            }
            return spec.isCausal() ? CAUSAL : PLAIN;
        }

        /**
         * Returns the name used in kernel names.
         *
         * @return e.g. {@code "causal"}
         */
        public String shortName() {
            return name().toLowerCase();
        }
    }

    /**
     * A dispatch key.
     *
     * @param arch the GPU generation
     * @param dataType the q/k/v/output dtype
     * @param headDim the head dim of q, k and v
     * @param variant the kernel family
     */
    public record Key(Arch arch, DeviceDataType dataType, int headDim, Variant variant) {}

    /**
     * A kernel and the classpath fatbin that holds it.
     *
     * @param module the fatbin resource, e.g. {@link KernelModule#FLASH_FWD}
     * @param name the {@code extern "C"} kernel name
     */
    public record KernelRef(String module, String name) {
        /** {@inheritDoc} */
        @Override
        public String toString() {
            return name;
        }
    }

    /** The head dims with Hopper wgmma kernels (plain and causal). */
    private static final int[] SM90_HEAD_DIMS = {64, 128, 256};

    /**
     * Head dims of the Hopper causal-ALiBi and causal-softcap kernels (flash_fwd_sm90.cu); elsewhere those variants
     * run the general one.
     */
    private static final int[] CAUSAL_MODIFIER_HEAD_DIMS = {64, 128};

    /** Head dims of the GQA-packed Hopper kernels (flash_fwd_sm90.cu). */
    private static final int[] PACKED_HEAD_DIMS = {64, 128, 256};

    /** System property that turns the Hopper wgmma kernels off (they are on by default). */
    public static final String SM90_PROPERTY = "flashdjl.flash.sm90";

    /** The head dims with kernels, ascending. */
    private static final int[] HEAD_DIMS = {32, 64, 96, 128, 192, 256};

    /** The dtypes with kernels. */
    private static final Set<DeviceDataType> DATA_TYPES =
            Collections.unmodifiableSet(EnumSet.of(DeviceDataType.FP16, DeviceDataType.BF16));

    private static final Map<Key, KernelRef> TABLE = table();

    private FlashDispatch() {}

    /**
     * Returns whether the Hopper wgmma kernels of a fatbin may be used: the fatbin was built and
     * {@code -Dflashdjl.flash.sm90=false} is not set ({@link #SM90_PROPERTY}, read once per call).
     *
     * @param module the sm_90a fatbin resource, e.g. {@link KernelModule#FLASH_FWD_SM90}
     * @return true when the module's kernels are enabled
     */
    static boolean hopperKernelsEnabled(String module) {
        return !"false".equalsIgnoreCase(System.getProperty(SM90_PROPERTY)) && KernelModule.notBuiltReason(module) == null;
    }

    private static Map<Key, KernelRef> table() {
        boolean sm90 = hopperKernelsEnabled(KernelModule.FLASH_FWD_SM90);
        Map<Key, KernelRef> t = new LinkedHashMap<>();
        for (Arch arch : Arch.values()) {
            for (DeviceDataType type : DATA_TYPES) {
                for (int d : HEAD_DIMS) {
                    for (Variant v : Variant.values()) {
                        String suffix = type.shortName() + "_hd" + d + "_" + v.shortName();
                        boolean wgmma = sm90 && arch == Arch.SM90 && Arrays.stream(SM90_HEAD_DIMS).anyMatch(x -> x == d);
                        if (v == Variant.PACKED && (!wgmma || Arrays.stream(PACKED_HEAD_DIMS).noneMatch(x -> x == d))) {
                            continue; // packing exists in the Hopper kernels only
                        }
                        if ((v == Variant.CAUSAL_ALIBI || v == Variant.CAUSAL_SOFTCAP)
                                && (!wgmma || Arrays.stream(CAUSAL_MODIFIER_HEAD_DIMS).noneMatch(x -> x == d))) {
                            // no kernel of its own here: the general one computes it
                            suffix = type.shortName() + "_hd" + d + "_" + Variant.GENERAL.shortName();
                        }
                        t.put(new Key(arch, type, d, v), wgmma
                                ? new KernelRef(KernelModule.FLASH_FWD_SM90, "flash_fwd_sm90_" + suffix)
                                : new KernelRef(KernelModule.FLASH_FWD, "flash_fwd_" + suffix));
                    }
                }
            }
        }
        return Collections.unmodifiableMap(t);
    }

    /**
     * Returns the whole table.
     *
     * @return key to kernel, in a stable order
     */
    public static Map<Key, KernelRef> entries() {
        return TABLE;
    }

    /**
     * Returns the supported head dims.
     *
     * @return ascending head dims
     */
    public static Set<Integer> headDims() {
        return TABLE.keySet().stream().map(Key::headDim).collect(Collectors.toCollection(TreeSet::new));
    }

    /**
     * Returns the supported dtypes.
     *
     * @return the dtypes
     */
    public static Set<DeviceDataType> dataTypes() {
        return DATA_TYPES;
    }

    /**
     * Returns why no kernel serves a dtype and head dim on any arch, or null if one does.
     *
     * @param dataType the dtype
     * @param headDim the head dim
     * @return e.g. {@code "head dim 80 not supported by flash; supported: 32, 64, 96, 128, 192, 256"}, or null
     */
    public static String unsupportedReason(DeviceDataType dataType, int headDim) {
        if (!DATA_TYPES.contains(dataType)) {
            return "dtype " + dataType + " not supported by flash; supported: "
                    + DATA_TYPES.stream().map(DeviceDataType::shortName).collect(Collectors.joining(", "));
        }
        if (!headDims().contains(headDim)) {
            return "head dim " + headDim + " not supported by flash; supported: "
                    + headDims().stream().map(String::valueOf).collect(Collectors.joining(", "));
        }
        return null;
    }

    /**
     * Returns the dispatch key of a call.
     *
     * @param computeCapability the device's compute capability, e.g. 90
     * @param dataType the dtype
     * @param headDim the head dim
     * @param spec the spec (decides the variant)
     * @return the key
     */
    public static Key key(int computeCapability, DeviceDataType dataType, int headDim, AttentionSpec spec) {
        return key(computeCapability, dataType, headDim, spec, false);
    }

    /**
     * Returns the dispatch key of a call that may sit at custom positions.
     *
     * @param computeCapability e.g. 90
     * @param dataType fp16 or bf16
     * @param headDim D
     * @param spec the options
     * @param positionsMatter true when the call's positions change the result ({@link Variant#of(AttentionSpec,
     *     boolean)})
     * @return the key
     */
    public static Key key(int computeCapability, DeviceDataType dataType, int headDim, AttentionSpec spec,
            boolean positionsMatter) {
        return new Key(Arch.of(computeCapability), dataType, headDim, Variant.of(spec, positionsMatter));
    }

    /**
     * Returns whether a device has a GQA-packed kernel ({@link Variant#PACKED}) for a dtype and head dim.
     *
     * @param computeCapability e.g. 90
     * @param dataType the dtype
     * @param headDim D
     * @return true on Hopper for head dims 64/128/256 when the Hopper kernels are built and enabled
     */
    public static boolean hasPacked(int computeCapability, DeviceDataType dataType, int headDim) {
        return computeCapability >= 80
                && TABLE.containsKey(new Key(Arch.of(computeCapability), dataType, headDim, Variant.PACKED));
    }

    /**
     * Returns the kernel for a key.
     *
     * @param key the key
     * @return the kernel and its fatbin
     * @throws UnsupportedOperationException naming the supported dtypes or head dims
     */
    public static KernelRef kernel(Key key) {
        KernelRef name = TABLE.get(key);
        if (name == null) {
            String why = unsupportedReason(key.dataType(), key.headDim());
            throw new UnsupportedOperationException(why != null ? why : "no flash kernel for " + key);
        }
        return name;
    }
}
