package org.flashdjl.ops.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;

/**
 * The {@code flash} attention backend: the CUDA flash-attention forward kernels on PyTorch-engine GPU NDArrays,
 * registered through {@code META-INF/services}. {@code auto} picks it for GPU inputs it supports.
 *
 * <p>It takes float16 NDArrays (bf16 NDArrays cannot exist safely in DJL 0.36.0; bf16 kernels run on raw device
 * memory through {@link FlashAttention}), dense contiguous inputs, the head dims of {@link FlashDispatch}, equal
 * query/key and value head dims, dense (at any positions: {@code AttentionProblem.Builder.optPositions}) or
 * varlen. The output and LSE are allocated on the inputs' device by the query's manager; varlen offsets and ALiBi
 * slopes go to the device as NDArrays of a sub-manager freed after the launch; the kernel runs on the legacy
 * default stream, in order with DJL's own ops.
 */
public final class FlashBackend implements AttentionBackend {

    /** The backend name. */
    public static final String NAME = "flash";

    /** Creates the backend (the ServiceLoader does). */
    public FlashBackend() {}

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return NAME;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "CUDA flash-attention kernels on GPU NDArrays";
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
        return KernelModule.notBuiltReason(KernelModule.FLASH_FWD);
    }

    /** {@inheritDoc} */
    @Override
    public boolean supportsVarlen() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(AttentionProblem problem) {
        Device device = problem.getDevice();
        if (!device.isGpu()) {
            return "inputs are on " + device + "; flash runs on GPU NDArrays only";
        }
        if (problem.getDataType() != DataType.FLOAT16) {
            return "dtype " + problem.getDataType() + " not supported by flash on NDArrays; supported: float16";
        }
        if (problem.getKeyPadding() != null) {
            return "per-entry key padding (optKeyPadding) is not supported by flash; the NDArray backends run it";
        }
        if (problem.getValueDim() != problem.getHeadDim()) {
            return "value head dim " + problem.getValueDim() + " != query/key head dim " + problem.getHeadDim()
                    + "; flash needs them equal";
        }
        String why = FlashDispatch.unsupportedReason(DeviceDataType.FP16, problem.getHeadDim());
        if (why != null) {
            return why;
        }
        if (problem.getBatch() > FlashAttention.MAX_GRID_YZ || problem.getQueryHeads() > FlashAttention.MAX_GRID_YZ) {
            return "batch " + problem.getBatch() + " or query heads " + problem.getQueryHeads()
                    + " exceed the CUDA grid limit " + FlashAttention.MAX_GRID_YZ;
        }
        for (NDArray a : new NDArray[] {problem.getQuery(), problem.getKey(), problem.getValue()}) {
            String bad = viewProblem(a);
            if (bad != null) {
                return bad;
            }
        }
        if (device.getDeviceId() >= CudaRuntime.getDeviceCount()) {
            return "device " + device + " is not visible to the CUDA driver (" + CudaRuntime.getDeviceCount()
                    + " device(s))";
        }
        try {
            FlashDispatch.Arch.of(CudaRuntime.getDeviceInfo(device.getDeviceId()).computeCapability());
        } catch (UnsupportedOperationException e) {
            return e.getMessage();
        }
        return null;
    }

    /** Kernel arguments as NDArrays of a manager on the device. */
    private static final class NDArrayArguments implements DeviceArguments {
        private final NDManager manager;

        NDArrayArguments(NDManager manager) {
            this.manager = manager;
        }

        @Override
        public DeviceTensor int32(String slot, int[] values) {
            return DeviceTensor.fromNDArray(manager.create(values)); // int32 [n] on the manager's device
        }

        @Override
        public DeviceTensor fp32(String slot, float[] values) {
            return DeviceTensor.fromNDArray(manager.create(values)); // fp32 [n]
        }
    }

    private static String viewProblem(NDArray array) {
        try {
            DeviceTensor.fromNDArray(array);
            return null;
        } catch (IllegalArgumentException | IllegalStateException e) {
            return e.getMessage();
        }
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(AttentionProblem problem) {
        NDArray q = problem.getQuery();
        NDManager manager = q.getManager();
        Device device = problem.getDevice();
        NDArray out = manager.create(problem.outputShape(), DataType.FLOAT16, device);
        NDArray lse = null;
        try {
            if (problem.getSpec().isReturnLse()) {
                lse = manager.create(problem.lseShape(), DataType.FLOAT32, device);
            }
            FlashAttention.Builder call = FlashAttention.builder()
                    .setQuery(DeviceTensor.fromNDArray(q))
                    .setKey(DeviceTensor.fromNDArray(problem.getKey()))
                    .setValue(DeviceTensor.fromNDArray(problem.getValue()))
                    .setOutput(DeviceTensor.fromNDArray(out))
                    .setSpec(problem.getSpec())
                    .optLse(lse == null ? null : DeviceTensor.fromNDArray(lse));
            if (problem.isVarlen()) {
                call.optVarlen(problem.getCuSeqlensQ(), problem.getCuSeqlensK());
            } else {
                call.optPositions(problem.getQueryStart(), problem.getKeyStart()); // a block's global positions
            }
            FlashAttention attention = call.build();
            // The offsets and slopes as NDArrays of a sub-manager on the device: freed after the launch without a
            // device synchronisation (PyTorch's allocator reuses the memory in stream order).
            try (NDManager arguments = manager.newSubManager(device)) {
                attention.run(new NDArrayArguments(arguments));
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
}
