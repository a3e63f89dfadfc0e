package org.flashdjl.ops.cuda;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;

import java.util.Arrays;
import java.util.Objects;

/**
 * Paged prefill / append over raw device memory: several query tokens per sequence (chunked prefill), packed by
 * {@code qoIndptr}, against K/V page pools. Two kernel families with one launch contract: on Hopper (compute
 * capability 9.0) the wgmma pipeline of the flash kernels ({@code ops/src/main/cuda/paged_prefill_sm90.cu}: producer
 * warpgroup, mbarrier ring, two consumer warpgroups; whole K/V tiles of pages by TMA where the page size is a multiple
 * of 8, else cp.async); elsewhere, or with {@code -Dflashdjl.flash.sm90=false}, the FA2 body of {@code flash_fwd.cu}
 * ({@code paged_prefill.cu}). {@link Builder#optArch} picks one explicitly.
 *
 * <p>Semantics ({@link org.flashdjl.ops.paged.PagedPlan}'s): query i of sequence b sits at global position
 * {@code keyOffset + Lk_b - Lq_b + i} (bottom-right), paged token t is global key {@code keyOffset + t}; causal,
 * window, sinks, ALiBi and softcap follow the library's one rule ({@code flash_common.cuh}). Supported: fp16 and
 * bf16, head dims {@link #HEAD_DIMS}, any GQA group, every page size 1..256. Memory: 16-byte aligned tensors,
 * head-dim stride 1, other strides multiples of 8 elements, K and V pools with equal strides, pages dense in the
 * pool. One launch on the legacy default stream; grid (ceil(maxLq / Br), Hq, B).
 */
public final class PagedPrefillKernel {

    /** The prefill fatbin resource (mma.sync kernels, sm_80 and sm_90a code). */
    public static final String MODULE = "org/flashdjl/ops/cuda/paged_prefill.fatbin";

    /** The Hopper prefill fatbin resource (wgmma kernels, sm_90a code only). */
    public static final String MODULE_SM90 = "org/flashdjl/ops/cuda/paged_prefill_sm90.fatbin";

    /** The largest pool (numPages x pageSize tokens) the Hopper kernels address (32-bit token slots). */
    public static final long MAX_SM90_POOL_TOKENS = 0xFFFF_FFFFL;

    /** The head dims with kernels. */
    public static final int[] HEAD_DIMS = {64, 128};

    /** {@code struct PagedPrefillParams} of {@code paged_prefill_params.h}. */
    public static final KernelStruct.Layout LAYOUT = KernelStruct.Layout.of("PagedPrefillParams",
            "q", KernelStruct.Kind.POINTER, "k_pages", KernelStruct.Kind.POINTER,
            "v_pages", KernelStruct.Kind.POINTER, "o", KernelStruct.Kind.POINTER,
            "lse", KernelStruct.Kind.POINTER, "qo_indptr", KernelStruct.Kind.POINTER,
            "page_indptr", KernelStruct.Kind.POINTER, "page_indices", KernelStruct.Kind.POINTER,
            "seq_lens", KernelStruct.Kind.POINTER, "alibi_slopes", KernelStruct.Kind.POINTER,
            "q_row_stride", KernelStruct.Kind.INT64, "q_head_stride", KernelStruct.Kind.INT64,
            "o_row_stride", KernelStruct.Kind.INT64, "o_head_stride", KernelStruct.Kind.INT64,
            "lse_row_stride", KernelStruct.Kind.INT64, "kv_row_stride", KernelStruct.Kind.INT64,
            "kv_head_stride", KernelStruct.Kind.INT64,
            "batch", KernelStruct.Kind.INT32, "hq", KernelStruct.Kind.INT32, "hkv", KernelStruct.Kind.INT32,
            "lq", KernelStruct.Kind.INT32, "head_dim", KernelStruct.Kind.INT32, "page_size", KernelStruct.Kind.INT32,
            "mask", KernelStruct.MASK_PARAMS);

    /** Query rows per CTA of each head dim's kernel in both families ({@code TraitsFor<D>::Br}, in the cfg array). */
    static int blockRows(int headDim) {
        return 128;
    }

    private final PrefillStep workspace;
    private final KernelStruct params;
    private final String module;
    private final String kernelName;
    private final int gridX;
    private final int hq;
    private final long numPages;
    private final float[] alibi;
    private final boolean synchronize;

    private PagedPrefillKernel(PrefillStep workspace, KernelStruct params, String module, String kernelName, int gridX,
            int hq, long numPages, float[] alibi, boolean synchronize) {
        this.workspace = workspace;
        this.params = params;
        this.module = module;
        this.kernelName = kernelName;
        this.gridX = gridX;
        this.hq = hq;
        this.numPages = numPages;
        this.alibi = alibi;
        this.synchronize = synchronize;
    }

    /**
     * Starts a call.
     *
     * @return a builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns why a (dtype, head dim, head counts) combination has no prefill kernel, or null.
     *
     * @param type the dtype of q and the pools
     * @param headDim D
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @return the reason naming the supported values, or null
     */
    public static String unsupportedReason(DeviceDataType type, int headDim, int queryHeads, int kvHeads) {
        String why = PagedOperands.unsupportedReason("the paged prefill kernels", HEAD_DIMS, type, headDim, queryHeads,
                kvHeads);
        if (why != null) {
            return why;
        }
        if (queryHeads > FlashAttention.MAX_GRID_YZ) {
            return "query heads " + queryHeads + " exceed the CUDA grid y limit " + FlashAttention.MAX_GRID_YZ;
        }
        return null;
    }

    /**
     * Returns the kernel this call launches.
     *
     * @return e.g. {@code "paged_prefill_fp16_hd128_causal"}, or {@code "paged_prefill_sm90_fp16_hd128_causal"} on
     *     Hopper
     */
    public String kernelName() {
        return kernelName;
    }

    /**
     * Returns the parameter block (the ALiBi slopes' device address is filled by {@link #run()}).
     *
     * @return the struct
     */
    public KernelStruct getParams() {
        return params;
    }

    /**
     * Launches the kernel on the legacy default stream.
     *
     * @throws IllegalStateException if CUDA is unavailable, the kernels are not built or the workspace is closed
     * @throws CudaException naming the driver call and kernel on a CUDA error
     */
    public void run() {
        workspace.checkOpen();
        if (workspace.tableBuffer == null) {
            throw new IllegalStateException("the workspace has no device memory (a validation-only workspace)");
        }
        int device = workspace.device;
        KernelModule.Kernel kernel = KernelModule.get(module, device).getKernel(kernelName);
        if (gridX == 0 || workspace.table.getBatchSize() == 0) {
            return;
        }
        if (alibi != null) {
            params.set("alibi_slopes", workspace.arguments().fp32("paged.alibi_slopes", alibi).getAddress());
        }
        // the Hopper kernels take PagedPrefillSm90Params: the block plus the pools' TMA maps (only the driver encodes)
        byte[] block = MODULE_SM90.equals(module)
                ? TensorMaps.pagedSm90Parameters(params.toBytes(), numPages, kernel.colsPerBlock())
                : params.toBytes();
        kernel.launch(gridX, hq, workspace.table.getBatchSize(), block);
        if (synchronize) {
            CudaRuntime.synchronize(kernelName);
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "PagedPrefillKernel{" + kernelName + ", " + workspace + "}";
    }

    /**
     * One step's device data: the page table and the query offsets uploaded once (int32 page indptr, indices,
     * sequence lengths and qoIndptr); every layer's {@link PagedPrefillKernel} of the step reuses it. Closing
     * waits for the device and frees it.
     */
    public static final class PrefillStep extends PagedStepBuffers {
        private final int[] qoIndptr;
        private final int maxQueryLength;
        // tableBuffer (PagedStepBuffers): int32 [B + 1 | nnz | B | qoIndptr B + 1], 256-byte aligned sections

        /**
         * Assembles a step over an uploaded table ({@link #create}); a null table makes a step without device memory
         * that builds launches but refuses to run them (the launcher's validation tests build such steps).
         */
        PrefillStep(PageTable table, int[] qoIndptr, int device, DeviceBuffer tableBuffer) {
            super("paged prefill", table, device, tableBuffer);
            this.qoIndptr = qoIndptr;
            int max = 0;
            for (int b = 0; b + 1 < qoIndptr.length; b++) {
                max = Math.max(max, qoIndptr[b + 1] - qoIndptr[b]);
            }
            this.maxQueryLength = max;
        }

        static int[] checkQo(PageTable table, int[] qoIndptr) {
            Objects.requireNonNull(table, "table");
            Objects.requireNonNull(qoIndptr, "qoIndptr");
            int b = table.getBatchSize();
            if (qoIndptr.length != b + 1 || qoIndptr[0] != 0) {
                throw new IllegalArgumentException("qoIndptr must have batch + 1 = " + (b + 1)
                        + " entries starting at 0, got " + Arrays.toString(qoIndptr));
            }
            for (int i = 0; i < b; i++) {
                if (qoIndptr[i + 1] < qoIndptr[i]) {
                    throw new IllegalArgumentException("qoIndptr must be non-decreasing, got "
                            + Arrays.toString(qoIndptr));
                }
            }
            if (b > FlashAttention.MAX_GRID_YZ) {
                throw new IllegalArgumentException("batch " + b + " exceeds the CUDA grid z limit "
                        + FlashAttention.MAX_GRID_YZ);
            }
            return qoIndptr.clone();
        }

        /**
         * Uploads the table and the query offsets.
         *
         * @param table the step's page table
         * @param qoIndptr [B + 1] first query row of each sequence
         * @param device the CUDA ordinal
         * @return the workspace
         */
        public static PrefillStep create(PageTable table, int[] qoIndptr, int device) {
            int[] qo = checkQo(table, qoIndptr);
            return new PrefillStep(table, qo, device, upload(table, qo, device));
        }

        long qoIndptrAddress() {
            return extraAddress();
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "PrefillStep{B=" + table.getBatchSize() + " totalQ=" + qoIndptr[qoIndptr.length - 1] + " maxLq="
                    + maxQueryLength + " page=" + table.getPageSize() + " cuda:" + device + "}";
        }
    }

    /** Collects and validates one call; {@code setX} are required. */
    public static final class Builder extends PagedCallBuilder<Builder> {
        private PrefillStep workspace;
        private FlashDispatch.Arch arch;

        private Builder() {}

        /**
         * Picks the kernel family instead of the device's: {@link FlashDispatch.Arch#SM80} runs the mma.sync kernels
         * on any device (on Hopper too), {@link FlashDispatch.Arch#SM90} the wgmma kernels, which need a compute
         * capability 9.0 device and their fatbin. Default (null): SM90 on a 9.0 device when the Hopper kernels are
         * built and {@code -Dflashdjl.flash.sm90=false} is not set, else SM80; a workspace without device memory
         * defaults to SM80.
         *
         * @param arch the kernel family, or null for the device's
         * @return this builder
         */
        public Builder optArch(FlashDispatch.Arch arch) {
            this.arch = arch;
            return this;
        }

        // The family of this call: the explicit one (checked against the device), or the device's.
        private FlashDispatch.Arch resolveArch() {
            if (workspace.tableBuffer == null) {
                return arch == null ? FlashDispatch.Arch.SM80 : arch;
            }
            int cc = CudaRuntime.getDeviceInfo(workspace.device).computeCapability();
            if (arch == null) {
                return cc == 90 && FlashDispatch.hopperKernelsEnabled(MODULE_SM90) ? FlashDispatch.Arch.SM90
                        : FlashDispatch.Arch.SM80;
            }
            if (arch == FlashDispatch.Arch.SM90) {
                if (cc != 90) {
                    throw new IllegalArgumentException("the sm90 paged prefill kernels need a compute capability 9.0"
                            + " device; cuda:" + workspace.device + " is " + cc / 10 + "." + cc % 10
                            + " (use SM80 or the default)");
                }
                String why = KernelModule.notBuiltReason(MODULE_SM90);
                if (why != null) {
                    throw new UnsupportedOperationException(why);
                }
            }
            return arch;
        }

        /**
         * Sets the step's workspace.
         *
         * @param workspace from {@link PrefillStep#create}
         * @return this builder
         */
        public Builder setWorkspace(PrefillStep workspace) {
            this.workspace = workspace;
            return this;
        }

        /**
         * Validates everything that can be checked without the GPU and builds the call.
         *
         * @return the call
         * @throws IllegalArgumentException naming the bad argument and the allowed values
         * @throws UnsupportedOperationException for a dtype or head dim without kernels
         */
        public PagedPrefillKernel build() {
            requireOperands(workspace);
            workspace.checkOpen();
            PagedOperands.check("the paged prefill kernels", "[totalQ, Hq, D]", q, k, v, o, lse, workspace.device,
                    workspace.table, keyOffset, spec);
            DeviceDataType type = q.getDataType();
            PageTable table = workspace.table;
            long totalQ = q.size(0);
            long hq = q.size(1);
            long d = q.size(2);
            long hkv = k.size(2);
            int[] qo = workspace.qoIndptr;
            if (totalQ != qo[qo.length - 1]) {
                throw new IllegalArgumentException("query has " + totalQ + " rows but qoIndptr[B] = "
                        + qo[qo.length - 1]);
            }
            String why = unsupportedReason(type, (int) d, (int) hq, (int) hkv);
            if (why != null) {
                throw new UnsupportedOperationException(why);
            }
            for (int b = 0; b < table.getBatchSize(); b++) {
                int lq = qo[b + 1] - qo[b];
                if (lq > table.getSeqLen(b) + keyOffset) {
                    throw new IllegalArgumentException("sequence " + b + " has " + lq + " query tokens but only "
                            + table.getSeqLen(b) + " cached keys (+ keyOffset " + keyOffset + "): append the"
                            + " queries' keys to the cache before attention");
                }
            }
            boolean general = !spec.isCausal() || spec.hasAlibi() || spec.getSoftcap() > 0
                    || spec.getWindowLeft() >= 0 || spec.getWindowRight() >= 0;
            boolean hopper = resolveArch() == FlashDispatch.Arch.SM90;
            long poolTokens = k.size(0) * k.size(1);
            if (hopper && poolTokens > MAX_SM90_POOL_TOKENS) { // the kernels' row slots are 32-bit
                if (arch == FlashDispatch.Arch.SM90) {
                    throw new IllegalArgumentException("the sm90 paged prefill kernels address pools of up to "
                            + MAX_SM90_POOL_TOKENS + " tokens; this pool has " + poolTokens
                            + " (numPages x pageSize): use SM80 or the default");
                }
                hopper = false;
            }
            String name = (hopper ? "paged_prefill_sm90_" : "paged_prefill_") + type.shortName() + "_hd" + d
                    + (general ? "_general" : "_causal");
            KernelStruct p = LAYOUT.newStruct();
            p.set("q", q.getAddress()).set("k_pages", k.getAddress()).set("v_pages", v.getAddress())
                    .set("o", o.getAddress()).set("lse", lse == null ? 0 : lse.getAddress())
                    .set("qo_indptr", workspace.qoIndptrAddress())
                    .set("page_indptr", workspace.indptrAddress()).set("page_indices", workspace.indicesAddress())
                    .set("seq_lens", workspace.seqLensAddress());
            p.set("q_row_stride", q.stride(0)).set("q_head_stride", q.stride(1))
                    .set("o_row_stride", o.stride(0)).set("o_head_stride", o.stride(1))
                    .set("lse_row_stride", lse == null ? 0 : lse.stride(0))
                    .set("kv_row_stride", k.stride(1)).set("kv_head_stride", k.stride(2));
            p.set("batch", table.getBatchSize()).set("hq", hq).set("hkv", hkv).set("lq", workspace.maxQueryLength)
                    .set("head_dim", d).set("page_size", table.getPageSize())
                    .setMask(spec, (int) d).set("mask.key_offset", keyOffset);
            int br = blockRows((int) d);
            int gridX = (workspace.maxQueryLength + br - 1) / br;
            return new PagedPrefillKernel(workspace, p, hopper ? MODULE_SM90 : MODULE, name, gridX, (int) hq, k.size(0),
                    spec.hasAlibi() ? spec.getAlibiSlopes() : null, synchronize);
        }
    }
}
