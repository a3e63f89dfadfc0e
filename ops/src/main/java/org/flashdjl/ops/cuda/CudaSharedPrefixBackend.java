package org.flashdjl.ops.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cascade.SharedPrefixBackend;
import org.flashdjl.ops.paged.PageTable;

/**
 * The {@code cuda} shared-prefix backend (registered in {@code META-INF/services}): the shared-prefix decode
 * wrapper on GPU NDArrays runs {@link CudaSharedPrefixDecode} (the prefix read once for the whole batch by split
 * flash calls, the paged suffix decode, the merges). Steps of float16 decode with the options that kernel path
 * supports run here; prefill steps, other dtypes, windows, sinks and ALiBi go to the NDArray cascade.
 *
 * <p>The device plan is made at a step's first layer (the prefix length is known there) and reused by its other
 * layers; the output and LSE are allocated by the query's manager.
 */
public final class CudaSharedPrefixBackend implements SharedPrefixBackend {

    /** The backend name. */
    public static final String NAME = "cuda";

    /** Creates the backend (the ServiceLoader does). */
    public CudaSharedPrefixBackend() {}

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return NAME;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        String why = CudaRuntime.unavailableReason();
        if (why != null) {
            return "CUDA not available: " + why;
        }
        for (String module : new String[] {KernelModule.FLASH_FWD, PagedDecodeKernel.MODULE, MergeStateKernel.MODULE}) {
            why = KernelModule.notBuiltReason(module);
            if (why != null) {
                return why;
            }
        }
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(boolean decode, int queryHeads, int kvHeads, int headDim, Device device) {
        if (!decode) {
            return "the CUDA shared-prefix path computes decode steps; prefill steps run on the NDArray cascade";
        }
        if (!device.isGpu()) {
            return "inputs are on " + device + "; the CUDA shared-prefix decode runs on GPU NDArrays";
        }
        String why = PagedDecodeKernel.unsupportedReason(DeviceDataType.FP16, headDim, queryHeads, kvHeads);
        if (why == null) {
            why = FlashDispatch.unsupportedReason(DeviceDataType.FP16, headDim);
        }
        if (why != null) {
            return why;
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

    /** {@inheritDoc} */
    @Override
    public Step begin(PageTable suffixes, int queryHeads, int kvHeads, int headDim, Device device) {
        return new CudaStep(suffixes, queryHeads, kvHeads, headDim, device.getDeviceId());
    }

    /** A step: the device plan of its prefix length, made at the first layer. */
    private static final class CudaStep implements Step {
        private final PageTable table;
        private final int queryHeads;
        private final int kvHeads;
        private final int headDim;
        private final int device;
        private CudaSharedPrefixDecode plan;

        CudaStep(PageTable table, int queryHeads, int kvHeads, int headDim, int device) {
            this.table = table;
            this.queryHeads = queryHeads;
            this.kvHeads = kvHeads;
            this.headDim = headDim;
            this.device = device;
        }

        @Override
        public String unsupportedReason(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
                AttentionSpec spec) {
            if (q.getDataType() != DataType.FLOAT16) {
                return "dtype " + q.getDataType() + " (the CUDA shared-prefix decode takes float16 NDArrays)";
            }
            String why = CudaSharedPrefixDecode.unsupportedReason(spec);
            if (why != null) {
                return why;
            }
            Shape vs = vShared.getShape();
            if (vs.dimension() != 3 || vs.get(2) != headDim) {
                return "value head dim " + vs + " differs from the query/key head dim " + headDim;
            }
            if (kShared.getShape().get(0) > Integer.MAX_VALUE) {
                return "a shared prefix of " + kShared.getShape().get(0) + " keys exceeds the kernels' int32 range";
            }
            for (NDArray a : new NDArray[] {q, kShared, vShared, kPages, vPages}) {
                if (a.getDevice().getDeviceId() != device || !a.getDevice().isGpu()) {
                    return "an input is on " + a.getDevice() + ", the step on cuda:" + device;
                }
                try {
                    DeviceTensor.fromNDArray(a);
                } catch (IllegalArgumentException | IllegalStateException e) {
                    return e.getMessage();
                }
            }
            return null;
        }

        @Override
        public AttentionOutput forward(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
                AttentionSpec spec) {
            int prefixLen = (int) kShared.getShape().get(0);
            if (plan == null || plan.getPrefixLength() != prefixLen) {
                if (plan != null) {
                    plan.close();
                    plan = null;
                }
                plan = CudaSharedPrefixDecode.begin(table, prefixLen, queryHeads, kvHeads, headDim, device);
            }
            NDManager manager = q.getManager();
            NDArray out = manager.create(q.getShape(), DataType.FLOAT16, q.getDevice()); // [B, Hq, D]
            NDArray lse = null;
            try {
                if (spec.isReturnLse()) {
                    lse = manager.create(new Shape(table.getBatchSize(), queryHeads), DataType.FLOAT32,
                            q.getDevice()); // [B, Hq]
                }
                plan.forward(DeviceTensor.fromNDArray(q), DeviceTensor.fromNDArray(kShared),
                        DeviceTensor.fromNDArray(vShared), DeviceTensor.fromNDArray(kPages),
                        DeviceTensor.fromNDArray(vPages), spec, DeviceTensor.fromNDArray(out),
                        lse == null ? null : DeviceTensor.fromNDArray(lse));
                return new AttentionOutput(out, lse);
            } catch (RuntimeException e) {
                out.close();
                if (lse != null) {
                    lse.close();
                }
                throw e;
            }
        }

        @Override
        public void close() {
            if (plan != null) {
                plan.close();
                plan = null;
            }
        }
    }
}
