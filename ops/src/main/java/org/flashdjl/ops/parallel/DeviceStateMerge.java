package org.flashdjl.ops.parallel;

import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.MergeStateKernel;

/**
 * The ring's (output, LSE) merges on the device through {@link MergeStateKernel}, one batch element at a time:
 * the kernels take [N, H, D] outputs with [N, H] LSEs, and a batch element of a bshd [B, L, H, D] or bhsd
 * [B, H, L, D] output with its LSE ([B, L, H] / [B, H, L], the output's axes without D) is exactly such a view
 * (rows = tokens).
 */
final class DeviceStateMerge {

    private DeviceStateMerge() {}

    /**
     * {@code (acc, accLse) <- merge((acc, accLse), (block, blockLse))}, in the dtype of acc.
     *
     * @param acc running output in the layout [B, L, H, D] / [B, H, L, D]
     * @param accLse its LSE [B, L, H] / [B, H, L]
     * @param block the block output, acc's shape and dtype
     * @param blockLse its LSE, accLse's shape
     * @param layout the layout of the outputs
     */
    static void mergeInPlace(DeviceTensor acc, DeviceTensor accLse, DeviceTensor block, DeviceTensor blockLse,
            QkvLayout layout) {
        for (long b = 0; b < acc.size(0); b++) {
            DeviceTensor v = rows(acc, b, layout);
            DeviceTensor s = lseRows(accLse, b, layout);
            MergeStateKernel.mergeStateInPlace(v, s, rows(block, b, layout), lseRows(blockLse, b, layout)).run();
        }
    }

    /**
     * Merges n state slabs into the output: {@code out = merge over i of (slabs[i], lseSlabs[i])}, in fp32,
     * rounded once to out's dtype.
     *
     * @param slabs [n, B, L, H, D] / [n, B, H, L, D] contiguous
     * @param lseSlabs [n, B, L, H] / [n, B, H, L] fp32 contiguous
     * @param out the output [B, L, H, D] / [B, H, L, D]
     * @param lse the merged LSE [B, L, H] / [B, H, L], or null
     * @param layout the layout
     */
    static void mergeSlabs(DeviceTensor slabs, DeviceTensor lseSlabs, DeviceTensor out, DeviceTensor lse,
            QkvLayout layout) {
        int seq = layout.seqAxis() + 1;
        int head = layout.headAxis() + 1;
        int esz = slabs.getDataType().byteSize();
        for (long b = 0; b < out.size(0); b++) {
            // [L, n, H, D] and [L, n, H]
            DeviceTensor v = DeviceTensor.fromDevicePointer(slabs.getAddress() + b * slabs.stride(1) * esz,
                    new long[] {slabs.size(seq), slabs.size(0), slabs.size(head), slabs.size(4)},
                    new long[] {slabs.stride(seq), slabs.stride(0), slabs.stride(head), slabs.stride(4)},
                    slabs.getDataType(), slabs.getDevice());
            DeviceTensor s = DeviceTensor.fromDevicePointer(lseSlabs.getAddress() + b * lseSlabs.stride(1) * 4,
                    new long[] {lseSlabs.size(seq), lseSlabs.size(0), lseSlabs.size(head)},
                    new long[] {lseSlabs.stride(seq), lseSlabs.stride(0), lseSlabs.stride(head)},
                    lseSlabs.getDataType(), lseSlabs.getDevice());
            MergeStateKernel.mergeStates(v, s, rows(out, b, layout), lse == null ? null : lseRows(lse, b, layout))
                    .run();
        }
    }

    // Batch element b of an output as [L, H, D].
    static DeviceTensor rows(DeviceTensor x, long b, QkvLayout layout) {
        int seq = layout.seqAxis();
        int head = layout.headAxis();
        return DeviceTensor.fromDevicePointer(x.getAddress() + b * x.stride(0) * x.getDataType().byteSize(),
                new long[] {x.size(seq), x.size(head), x.size(3)},
                new long[] {x.stride(seq), x.stride(head), x.stride(3)}, x.getDataType(), x.getDevice());
    }

    // Batch element b of an LSE [B, L, H] / [B, H, L] as [L, H].
    static DeviceTensor lseRows(DeviceTensor s, long b, QkvLayout layout) {
        int seq = layout.seqAxis();
        int head = layout.headAxis();
        return DeviceTensor.fromDevicePointer(s.getAddress() + b * s.stride(0) * 4,
                new long[] {s.size(seq), s.size(head)}, new long[] {s.stride(seq), s.stride(head)}, s.getDataType(),
                s.getDevice());
    }
}
