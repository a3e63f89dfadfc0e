package org.flashdjl.tests.gpu;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;

import org.flashdjl.ops.cuda.DeviceArguments;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.KernelLauncher;
import org.flashdjl.ops.cuda.KernelStruct;

import java.util.ArrayList;
import java.util.List;

/**
 * A Java stand-in for the flash kernels on host memory, behind the launcher seam of {@link FlashAttention}: the
 * call is prepared by {@link FlashAttention#run(DeviceArguments, KernelLauncher)} exactly as on a GPU (kernel
 * picked by the dispatch table, offsets and ALiBi slopes placed through {@link DeviceArguments}, parameter block
 * packed), and this launcher emulates the kernel from what it is handed: the grid and the packed
 * {@code FlashFwdParams} bytes, whose pointers it follows into host memory (q, k, v, o, lse, {@code cu_seqlens},
 * ALiBi slopes) with the strides of each tensor, honouring the variant in the kernel's name ({@code plain} ignores
 * every option, {@code causal} all but causality, {@code causal_alibi} all but causality and the slopes,
 * {@code causal_softcap} all but causality and the softcap, only {@code positioned} reads the positions) and writing
 * the output in the dtype of the name and the LSE like the kernels do (written from the launch contract in
 * {@code flash_fwd.cu}'s header and {@code flash_common.cuh}). It checks the Java side of the ABI, not the kernels'
 * numerics.
 */
final class KernelEmulator implements KernelLauncher {

    /** The emulator. */
    static final KernelEmulator INSTANCE = new KernelEmulator();

    /** The host memory an emulated kernel may touch: start address -> end (exclusive), like memcheck's view. */
    private static final java.util.concurrent.ConcurrentSkipListMap<Long, Long> MEMORY =
            new java.util.concurrent.ConcurrentSkipListMap<>();

    /** Registers host memory as addressable by emulated kernels. */
    static void register(long address, long bytes) {
        MEMORY.put(address, address + bytes);
    }

    /** Forgets host memory. */
    static void unregister(long address) {
        MEMORY.remove(address);
    }

    // Fails like an illegal address would on the GPU, instead of reading or writing outside a buffer.
    private static void checkAccess(long address, long bytes, String what) {
        java.util.Map.Entry<Long, Long> e = MEMORY.floorEntry(address);
        if (e == null || address + bytes > e.getValue()) {
            throw new AssertionError("the emulated kernel would access " + bytes + " bytes at 0x"
                    + Long.toHexString(address) + " (" + what + ") outside every buffer: an illegal address");
        }
    }

    private KernelEmulator() {}

    /**
     * Runs a built call through the emulator, its offsets and slopes in host memory freed afterwards.
     *
     * @param call the call
     * @param launcher the emulator, or a launcher wrapping it
     */
    static void run(FlashAttention call, KernelLauncher launcher) {
        try (HostArguments args = new HostArguments()) {
            call.run(args, launcher);
        }
    }

    @Override
    public int computeCapability(int device) {
        return 90;
    }

    @Override
    public void synchronize(int device, String what) {
        // the emulation is synchronous
    }

    @Override
    public void launch(int device, FlashDispatch.KernelRef kernel, long rows, int gridY, int gridZ,
            byte[] parameters) {
        KernelStruct p = FlashAttention.LAYOUT.read(parameters);
        String name = kernel.name();
        DeviceDataType type = name.contains("_bf16_") ? DeviceDataType.BF16 : DeviceDataType.FP16;
        boolean packed = name.endsWith("_packed"); // plain, a key/value head's query heads as rows
        boolean plain = packed || name.endsWith("_plain");
        boolean causalOnly = name.endsWith("_causal");
        // causal_alibi: causal and the ALiBi slopes; every other mask field is ignored, as causalOnly does
        boolean causalAlibi = name.endsWith("_causal_alibi");
        // causal_softcap: causal and the softcap; every other mask field and the slopes are ignored
        boolean causalSoftcap = name.endsWith("_causal_softcap");
        int hq = p.get("hq").intValue();
        int hkv = p.get("hkv").intValue();
        int d = p.get("head_dim").intValue();
        int denseLq = p.get("lq").intValue();
        int denseLk = p.get("lk").intValue();
        long wantRows = packed ? (long) denseLq * (hq / hkv) : denseLq;
        if (rows != wantRows || gridY != (packed ? hkv : hq) || gridZ != p.get("batch").intValue()) {
            throw new IllegalStateException(name + ": grid (ceil(" + rows + " / Br), " + gridY + ", " + gridZ
                    + ") does not match the parameters' lq " + denseLq + ", hq " + hq + ", hkv " + hkv + ", batch "
                    + p.get("batch") + (packed ? " (packed: lq x hq/hkv rows, hkv heads)" : ""));
        }
        if (packed && pointer(p, "cu_seqlens_q") != null) {
            throw new IllegalStateException(name + ": the packed kernels take dense queries only");
        }
        // the kernel's mask is its name's, not the params'
        boolean fixedMask = plain || causalOnly || causalAlibi || causalSoftcap;
        boolean causal = causalOnly || causalAlibi || causalSoftcap || (!plain && p.get("mask.causal").intValue() != 0);
        int wl = fixedMask ? -1 : p.get("mask.window_left").intValue();
        int wr = fixedMask ? -1 : p.get("mask.window_right").intValue();
        int sinks = fixedMask ? 0 : p.get("mask.sink_tokens").intValue();
        float softcap = fixedMask && !causalSoftcap ? 0 : p.get("mask.softcap").floatValue();
        // positions (mask_params.h), read by the positioned variant only: local key j is global key keyOffset + j,
        // query i sits at Lk - Lq + shift + i
        boolean positioned = name.endsWith("_positioned");
        int keyOffset = positioned ? p.get("mask.key_offset").intValue() : 0;
        int shift = positioned ? p.get("mask.query_shift").intValue() : 0;
        double scale = p.get("mask.scale").floatValue();
        Pointer alibi = plain || causalOnly || causalSoftcap ? null : pointer(p, "alibi_slopes");
        Pointer cuQ = pointer(p, "cu_seqlens_q");
        Pointer cuK = pointer(p, "cu_seqlens_k");
        if (cuQ != null) {
            checkAccess(Pointer.nativeValue(cuQ), 4L * (gridZ + 1), "cu_seqlens_q");
        }
        if (cuK != null) {
            checkAccess(Pointer.nativeValue(cuK), 4L * (gridZ + 1), "cu_seqlens_k");
        }
        if (alibi != null) {
            checkAccess(Pointer.nativeValue(alibi), 4L * hq, "alibi_slopes");
        }
        Pointer q = pointer(p, "q");
        Pointer k = pointer(p, "k");
        Pointer v = pointer(p, "v");
        Pointer o = pointer(p, "o");
        Pointer lse = pointer(p, "lse");
        for (int b = 0; b < gridZ; b++) {
            int q0 = cuQ == null ? 0 : cuQ.getInt(4L * b);
            int lq = cuQ == null ? denseLq : cuQ.getInt(4L * (b + 1)) - q0;
            int k0 = cuK == null ? 0 : cuK.getInt(4L * b);
            int lk = cuK == null ? denseLk : cuK.getInt(4L * (b + 1)) - k0;
            for (int h = 0; h < hq; h++) { // packed grids cover the same heads, G per CTA
                int kh = h / (hq / hkv);
                long qb = offset(p, "q", cuQ != null, b, q0, h);
                long ob = offset(p, "o", cuQ != null, b, q0, h);
                long kb = offset(p, "k", cuK != null, b, k0, kh);
                long vb = offset(p, "v", cuK != null, b, k0, kh);
                long lb = offset(p, "lse", cuQ != null, b, q0, h);
                long qRow = p.get("q_row_stride").longValue();
                long kRow = p.get("k_row_stride").longValue();
                long vRow = p.get("v_row_stride").longValue();
                long oRow = p.get("o_row_stride").longValue();
                long lseRow = p.get("lse_row_stride").longValue();
                float slope = alibi == null ? 0 : alibi.getFloat(4L * h);
                for (int i = 0; i < lq; i++) {
                    long pos = (long) i + lk - lq + shift;
                    float[] qr = row(q, type, qb + i * qRow, d);
                    double[] s = new double[lk];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < lk; j++) {
                        boolean visible = !(causal && j > pos) && !(wr >= 0 && j > pos + wr)
                                && !(wl >= 0 && j < pos - wl && keyOffset + j >= sinks);
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        float[] kr = row(k, type, kb + j * kRow, d);
                        double dot = 0;
                        for (int x = 0; x < d; x++) {
                            dot += (double) qr[x] * kr[x];
                        }
                        double sc = dot * scale;
                        if (softcap > 0) {
                            sc = softcap * Math.tanh(sc / softcap);
                        }
                        sc -= slope * Math.abs((double) (pos - j));
                        s[j] = sc;
                        max = Math.max(max, sc);
                    }
                    double[] acc = new double[d];
                    double l = Double.NEGATIVE_INFINITY;
                    if (max > Double.NEGATIVE_INFINITY) {
                        double sum = 0;
                        for (int j = 0; j < lk; j++) {
                            sum += Math.exp(s[j] - max);
                        }
                        for (int j = 0; j < lk; j++) {
                            double w = Math.exp(s[j] - max) / sum;
                            if (w == 0) {
                                continue; // a masked key is never read
                            }
                            float[] vr = row(v, type, vb + j * vRow, d);
                            for (int x = 0; x < d; x++) {
                                acc[x] += w * vr[x];
                            }
                        }
                        l = max + Math.log(sum);
                    }
                    short[] out = new short[d];
                    for (int x = 0; x < d; x++) {
                        out[x] = HostFloats.toBits(type, (float) acc[x]);
                    }
                    checkAccess(Pointer.nativeValue(o) + 2 * (ob + i * oRow), 2L * d, "output row");
                    o.write(2 * (ob + i * oRow), out, 0, d);
                    if (lse != null) {
                        checkAccess(Pointer.nativeValue(lse) + 4 * (lb + i * lseRow), 4, "lse");
                        lse.setFloat(4 * (lb + i * lseRow), (float) l);
                    }
                }
            }
        }
    }

    // Element offset of (sequence b, row 0, head) of a tensor: packed rows from row0 when varlen, else batch b.
    private static long offset(KernelStruct p, String tensor, boolean varlen, int b, int row0, int head) {
        long base = varlen ? row0 * p.get(tensor + "_row_stride").longValue()
                : b * p.get(tensor + "_batch_stride").longValue();
        return base + head * p.get(tensor + "_head_stride").longValue();
    }

    private static Pointer pointer(KernelStruct p, String field) {
        long address = p.get(field).longValue();
        return address == 0 ? null : new Pointer(address);
    }

    private static float[] row(Pointer base, DeviceDataType type, long element, int d) {
        checkAccess(Pointer.nativeValue(base) + 2 * element, 2L * d, "input row");
        short[] bits = base.getShortArray(2 * element, d);
        return HostFloats.fromBits(type, bits);
    }

    /** The kernel arguments of emulated launches in host memory, freed by {@link #close()}. */
    static final class HostArguments implements DeviceArguments, AutoCloseable {
        private final List<Memory> owned = new ArrayList<>();

        @Override
        public DeviceTensor int32(String slot, int[] values) {
            Memory m = new Memory(Math.max(4, 4L * values.length));
            m.write(0, values, 0, values.length);
            owned.add(m);
            register(Pointer.nativeValue(m), 4L * values.length);
            return view(m, values.length, DeviceDataType.INT32);
        }

        @Override
        public DeviceTensor fp32(String slot, float[] values) {
            Memory m = new Memory(Math.max(4, 4L * values.length));
            m.write(0, values, 0, values.length);
            owned.add(m);
            register(Pointer.nativeValue(m), 4L * values.length);
            return view(m, values.length, DeviceDataType.FP32);
        }

        private static DeviceTensor view(Memory m, long n, DeviceDataType type) {
            return DeviceTensor.fromDevicePointer(Pointer.nativeValue(m), new long[] {n}, new long[] {1}, type,
                    GpuCheck.DEVICE);
        }

        @Override
        public void close() {
            for (Memory m : owned) {
                unregister(Pointer.nativeValue(m));
                m.close();
            }
            owned.clear();
        }
    }
}
