package org.flashdjl.ops.parallel.nccl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.parallel.group.P2POp;
import org.flashdjl.ops.parallel.group.ReduceOp;
import org.flashdjl.ops.parallel.group.Work;

import java.util.Arrays;
import java.util.List;

/**
 * The {@link org.flashdjl.ops.parallel.group.ProcessGroup} NDArray collectives of an {@link NcclProcessGroup}:
 * NDArrays become {@link NcclBuffer}s through the CUDA package's NDArray device view ({@link NcclBuffer#of(NDArray)}:
 * dense, contiguous, float16/float32/int32, on the group's GPU), results are allocated by the inputs' managers, and
 * the raw collectives move the memory.
 */
final class NcclNDArrays {

    private final NcclProcessGroup group;

    NcclNDArrays(NcclProcessGroup group) {
        this.group = group;
    }

    Work batchIsendIrecv(List<P2POp> ops) {
        DeviceP2POp[] device = new DeviceP2POp[ops.size()];
        for (int i = 0; i < device.length; i++) {
            P2POp o = ops.get(i);
            device[i] = new DeviceP2POp(o.kind(), view(o.tensor()), o.peer());
        }
        return group.batchIsendIrecv(device);
    }

    NDArray[] allGather(NDArray tensor) {
        int world = group.size();
        NcclBuffer send = view(tensor);
        long[] dims = tensor.getShape().getShape();
        long[] outDims = new long[dims.length + 1];
        outDims[0] = world;
        System.arraycopy(dims, 0, outDims, 1, dims.length);
        NDManager manager = tensor.getManager();
        NDArray all = manager.create(new Shape(outDims), tensor.getDataType(), tensor.getDevice());
        group.allGather(send, view(all));
        NDArray[] out = new NDArray[world];
        for (int r = 0; r < world; r++) {
            out[r] = all.get(r);
        }
        return out;
    }

    NDArray[] allToAll(NDArray[] chunks) {
        int world = group.size();
        int rank = group.rank();
        if (chunks.length != world) {
            throw new IllegalArgumentException("allToAll needs one chunk per rank (" + world + "), got " + chunks.length);
        }
        int ndim = chunks[0].getShape().dimension();
        long[] myDims = new long[world * ndim];
        for (int j = 0; j < world; j++) {
            if (chunks[j].getShape().dimension() != ndim) {
                throw new IllegalArgumentException("allToAll chunks must have one rank; chunk 0 is "
                        + chunks[0].getShape() + ", chunk " + j + " is " + chunks[j].getShape());
            }
            System.arraycopy(chunks[j].getShape().getShape(), 0, myDims, j * ndim, ndim);
        }
        long[] dims = group.allGatherLongs(myDims); // [src][dst][ndim]: the receivers learn the shapes
        NDArray[] out = new NDArray[world];
        NcclBuffer[] sends = new NcclBuffer[world];
        NcclBuffer[] recvs = new NcclBuffer[world];
        for (int i = 0; i < world; i++) {
            long[] shape = Arrays.copyOfRange(dims, (i * world + rank) * ndim, (i * world + rank + 1) * ndim);
            out[i] = chunks[0].getManager().create(new Shape(shape), chunks[0].getDataType(), chunks[0].getDevice());
            sends[i] = view(chunks[i]);
            recvs[i] = view(out[i]);
        }
        group.allToAll(sends, recvs);
        return out;
    }

    void allReduce(NDArray tensor, ReduceOp op) {
        group.allReduce(view(tensor), op);
    }

    private NcclBuffer view(NDArray array) {
        if (array.getDevice().isGpu() && array.getDevice().getDeviceId() != group.device()) {
            throw new IllegalArgumentException("the NDArray " + array.getShape() + " is on " + array.getDevice()
                    + " but rank " + group.rank() + " of this NCCL group uses cuda:" + group.device());
        }
        return NcclBuffer.of(array);
    }
}
