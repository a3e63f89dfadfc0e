package org.flashdjl.ops.parallel;

import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;

import java.util.Arrays;

/** Argument checks and view helpers shared by the device ring and Ulysses. */
final class DeviceChecks {

    private DeviceChecks() {}

    /**
     * Checks q, k, v, out and lse of one rank before any collective, so a bad input fails here and not as a peer
     * timeout.
     *
     * @param method "ring" or "ulysses", for messages
     * @param group the group (its device)
     * @param q queries
     * @param k keys
     * @param v values
     * @param out output
     * @param lse LSE or null
     * @param layout the layout
     */
    static void checkQkv(String method, NcclProcessGroup group, DeviceTensor q, DeviceTensor k, DeviceTensor v,
            DeviceTensor out, DeviceTensor lse, QkvLayout layout) {
        String where = method + " attention on GPU (rank " + group.rank() + ", cuda:" + group.device() + ")";
        Object[][] named = {{"query", q}, {"key", k}, {"value", v}, {"output", out}, {"lse", lse}};
        for (Object[] n : named) {
            DeviceTensor t = (DeviceTensor) n[1];
            if (t == null) {
                if (!"lse".equals(n[0])) {
                    throw new NullPointerException(n[0] + " is null");
                }
                continue;
            }
            if (t.getDevice() != group.device()) {
                throw new IllegalArgumentException(where + ": " + n[0] + " is on "
                        + (t.getDevice() < 0 ? "the host" : "cuda:" + t.getDevice()) + "; every tensor must be on the"
                        + " group's device cuda:" + group.device());
            }
            if (!t.isContiguous()) {
                throw new IllegalArgumentException(where + ": " + n[0] + " must be dense and contiguous in the "
                        + layout.name().toLowerCase() + " layout (NCCL sends flat buffers), got " + t);
            }
            if (t != lse && t.rank() != 4) {
                throw new IllegalArgumentException(where + ": " + n[0] + " must have rank 4 " + layout.axes() + ", got "
                        + DeviceTensor.format(t.getShape()));
            }
        }
        if (!Arrays.equals(k.getShape(), v.getShape())) {
            throw new IllegalArgumentException(where + ": value shape " + DeviceTensor.format(v.getShape())
                    + " must equal key shape " + DeviceTensor.format(k.getShape()));
        }
        if (!Arrays.equals(q.getShape(), out.getShape()) || q.getDataType() != out.getDataType()) {
            throw new IllegalArgumentException(where + ": output " + out + " must have the shape and dtype of the"
                    + " query " + q);
        }
        if (k.getDataType() != q.getDataType() || v.getDataType() != q.getDataType()) {
            throw new IllegalArgumentException(where + ": q, k and v must share one dtype, got " + q.getDataType()
                    + ", " + k.getDataType() + ", " + v.getDataType());
        }
        int h = layout.headAxis();
        if (k.size(0) != q.size(0) || k.size(3) != q.size(3) || k.size(h) == 0 || q.size(h) % k.size(h) != 0) {
            throw new IllegalArgumentException(where + ": query " + DeviceTensor.format(q.getShape()) + " and key "
                    + DeviceTensor.format(k.getShape()) + " need the same batch and head dim, and query heads a"
                    + " multiple of key heads");
        }
        if (lse != null) {
            long[] expected = Arrays.copyOf(q.getShape(), 3); // q's shape without D
            if (!Arrays.equals(lse.getShape(), expected)
                    || lse.getDataType() != DeviceDataType.FP32) {
                throw new IllegalArgumentException(where + ": lse must be fp32 " + DeviceTensor.format(expected)
                        + " (q's shape without its head dim), got " + lse);
            }
        }
    }

    /**
     * Returns a contiguous view of the start of a contiguous view with another shape.
     *
     * @param t a contiguous view at least as large
     * @param shape the new shape
     * @return the view
     */
    static DeviceTensor reshape(DeviceTensor t, long... shape) {
        DeviceTensor r = DeviceTensor.fromDevicePointer(t.getAddress(), shape, DeviceTensor.contiguousStrides(shape),
                t.getDataType(), t.getDevice());
        if (r.numel() > t.numel()) {
            throw new IllegalArgumentException("reshape to " + DeviceTensor.format(shape) + " exceeds " + t);
        }
        return r;
    }
}
