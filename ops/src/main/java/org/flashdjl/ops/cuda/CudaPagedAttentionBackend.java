package org.flashdjl.ops.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.paged.PagedAttentionBackend;
import org.flashdjl.ops.paged.PagedAttentionBackends;
import org.flashdjl.ops.paged.PagedAttentionProblem;
import org.flashdjl.ops.paged.PagedPlan;

/**
 * The {@code cuda} paged attention backend: {@link PagedDecodeKernel} (GQA-grouped paged decode with split-KV) on
 * PyTorch-engine GPU NDArrays, registered through {@code META-INF/services}; {@code auto} picks it for decode
 * plans on a GPU. {@link #prepare} uploads the step's page table once and plans the split from the device's SM
 * count; every layer's {@link #forward} reuses it (one launch, two with split-KV, on the legacy default stream).
 *
 * <p>It runs decode plans (one query token per sequence) with head dims {@link PagedDecodeKernel#HEAD_DIMS},
 * {@code Hq / Hkv <= 16}, any page size 1..256, float16 NDArrays (bf16 NDArrays cannot exist safely in DJL
 * 0.36.0; the bf16 kernels run on device memory through {@link PagedDecodeKernel}), equal key and value head dims
 * and dense contiguous pools ({@link DeviceTensor#fromNDArray}). Chunked prefill / append
 * plans (several query tokens per sequence) run {@link PagedPrefillKernel} (head dims
 * {@link PagedPrefillKernel#HEAD_DIMS}, any GQA group): {@link #prepare} uploads the page table and qoIndptr once.
 */
public final class CudaPagedAttentionBackend implements PagedAttentionBackend {

    /** Creates the backend (the ServiceLoader does). */
    public CudaPagedAttentionBackend() {}

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return PagedAttentionBackends.CUDA;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "CUDA paged decode / prefill kernels reading the pages in place";
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return 100;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        String why = CudaRuntime.unavailableReason();
        if (why != null) {
            return "CUDA not available: " + why;
        }
        why = KernelModule.notBuiltReason(PagedDecodeKernel.MODULE);
        if (why == null) {
            why = KernelModule.notBuiltReason(PagedPrefillKernel.MODULE);
        }
        return why != null ? why : KernelModule.notBuiltReason(MergeStateKernel.MODULE);
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedPlan plan) {
        Device device = plan.getDevice();
        if (!device.isGpu()) {
            return "the plan is on " + device + "; the cuda backend runs on GPU plans only";
        }
        if (plan.getDataType() != null && plan.getDataType() != DataType.FLOAT16) {
            return dtypeReason(plan.getDataType());
        }
        String why = plan.isDecode()
                ? PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, plan.getHeadDim(), plan.getQueryHeads(),
                        plan.getKvHeads())
                : PagedPrefillKernel.unsupportedReason(DeviceDataType.FP16, plan.getHeadDim(),
                        plan.getQueryHeads(), plan.getKvHeads());
        if (why != null) {
            return why;
        }
        if (plan.getBatchSize() > FlashAttention.MAX_GRID_YZ) {
            return "batch " + plan.getBatchSize() + " exceeds the CUDA grid z limit " + FlashAttention.MAX_GRID_YZ;
        }
        if (CudaRuntime.unavailableReason() == null && device.getDeviceId() >= CudaRuntime.getDeviceCount()) {
            return "device " + device + " is not visible to the CUDA driver (" + CudaRuntime.getDeviceCount()
                    + " device(s))";
        }
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedAttentionProblem problem) {
        if (problem.getDataType() != DataType.FLOAT16) {
            return dtypeReason(problem.getDataType());
        }
        if (problem.getValueDim() != problem.getPlan().getHeadDim()) {
            return "value head dim " + problem.getValueDim() + " != key head dim " + problem.getPlan().getHeadDim()
                    + "; the cuda paged backend needs them equal";
        }
        for (NDArray a : new NDArray[] {problem.getQuery(), problem.getKeyPages(), problem.getValuePages()}) {
            try {
                DeviceTensor.fromNDArray(a);
            } catch (IllegalArgumentException | IllegalStateException e) {
                return e.getMessage();
            }
        }
        return null;
    }

    private static String dtypeReason(DataType type) {
        return "dtype " + type + " not supported by the cuda paged backend on NDArrays; supported: float16 (bf16"
                + " kernels run on device memory through PagedDecodeKernel)";
    }

    /** {@inheritDoc} */
    @Override
    public PlanData prepare(PagedPlan plan, NDManager manager) {
        int device = plan.getDevice().getDeviceId();
        if (!plan.isDecode()) {
            return new CudaPlanData(null,
                    PagedPrefillKernel.PrefillStep.create(plan.getPageTable(), plan.getQoIndptr(), device));
        }
        PagedDecodeKernel.DecodeStep ws = PagedDecodeKernel.DecodeStep.create(plan.getPageTable(),
                plan.getQueryHeads(), plan.getKvHeads(), plan.getHeadDim(), device);
        return new CudaPlanData(ws, null);
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(PagedAttentionProblem problem) {
        if (!(problem.getPlanData() instanceof CudaPlanData)) {
            throw new IllegalArgumentException("the plan was prepared by backend '"
                    + problem.getPlan().getBackend().getName() + "', not '" + getName() + "'");
        }
        CudaPlanData cws = (CudaPlanData) problem.getPlanData();
        PagedPlan plan = problem.getPlan();
        NDArray q = problem.getQuery(); // [totalQ, Hq, D] (decode: [B, Hq, D])
        NDManager manager = q.getManager();
        Shape outShape = new Shape(plan.getTotalQueries(), plan.getQueryHeads(), plan.getHeadDim());
        NDArray out = manager.create(outShape, DataType.FLOAT16, problem.getDevice());
        NDArray lse = null;
        try {
            if (problem.getSpec().isReturnLse()) {
                lse = manager.create(new Shape(plan.getTotalQueries(), plan.getQueryHeads()), DataType.FLOAT32,
                        problem.getDevice());
            }
            if (cws.prefill != null) {
                if (plan.getTotalQueries() > 0) {
                    PagedPrefillKernel.builder()
                            .setQuery(DeviceTensor.fromNDArray(q))
                            .setKeyPages(DeviceTensor.fromNDArray(problem.getKeyPages()))
                            .setValuePages(DeviceTensor.fromNDArray(problem.getValuePages()))
                            .setOutput(DeviceTensor.fromNDArray(out))
                            .optLse(lse == null ? null : DeviceTensor.fromNDArray(lse))
                            .setSpec(problem.getSpec())
                            .optKeyOffset(problem.getKeyOffset())
                            .setWorkspace(cws.prefill)
                            .build()
                            .run();
                }
            } else if (plan.getBatchSize() > 0) {
                PagedDecodeKernel.builder()
                        .setQuery(DeviceTensor.fromNDArray(q))
                        .setKeyPages(DeviceTensor.fromNDArray(problem.getKeyPages()))
                        .setValuePages(DeviceTensor.fromNDArray(problem.getValuePages()))
                        .setOutput(DeviceTensor.fromNDArray(out))
                        .optLse(lse == null ? null : DeviceTensor.fromNDArray(lse))
                        .setSpec(problem.getSpec())
                        .optKeyOffset(problem.getKeyOffset())
                        .setWorkspace(cws.decode)
                        .build()
                        .run();
            }
            return new AttentionOutput(out, lse);
        } catch (RuntimeException e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return getName() + "(paged decode and prefill kernels)";
    }

    /** The step's device page table (and split workspace for decode, qoIndptr for prefill): one is non-null. */
    private static final class CudaPlanData implements PlanData {
        final PagedDecodeKernel.DecodeStep decode;
        final PagedPrefillKernel.PrefillStep prefill;

        CudaPlanData(PagedDecodeKernel.DecodeStep decode, PagedPrefillKernel.PrefillStep prefill) {
            this.decode = decode;
            this.prefill = prefill;
        }

        @Override
        public void close() {
            if (decode != null) {
                decode.close();
            } else {
                prefill.close();
            }
        }
    }
}
