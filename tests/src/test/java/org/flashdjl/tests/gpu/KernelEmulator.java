package org.flashdjl.tests.gpu;

import com.sun.jna.Pointer;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.KernelStruct;

/**
 * A Java stand-in for the flash kernels on host memory, written from the launch contract in
 * {@code flash_fwd.cu}'s header: it reads only the packed {@link FlashParams} (addresses, strides, sizes, flags),
 * honours the variant of the kernel the dispatch table picked ({@code plain} ignores every option, {@code causal}
 * all but causality), and writes the output in the dtype and the LSE like the kernels do. It checks the Java side
 * of the ABI, not the math.
 */
final class KernelEmulator {

    private KernelEmulator() {}

    static void run(FlashAttention call, AttentionSpec spec, DeviceDataType type, int[] cuQ, int[] cuK) {
        run(call, spec, type, cuQ, cuK, false);
    }

    /** Like {@link #run}; {@code forcePlain} emulates a wrong dispatch (tests that the checks catch it). */
    static void run(FlashAttention call, AttentionSpec spec, DeviceDataType type, int[] cuQ, int[] cuK,
            boolean forcePlain) {
        KernelStruct p = call.getParams();
        String kernel = call.kernelName(90);
        boolean plain = forcePlain || kernel.endsWith("_plain");
        boolean causalOnly = kernel.endsWith("_causal");
        int batch = p.get("batch").intValue();
        int hq = p.get("hq").intValue();
        int hkv = p.get("hkv").intValue();
        int d = p.get("head_dim").intValue();
        boolean causal = causalOnly || (!plain && p.get("mask.causal").intValue() != 0);
        int wl = plain || causalOnly ? -1 : p.get("mask.window_left").intValue();
        int wr = plain || causalOnly ? -1 : p.get("mask.window_right").intValue();
        int sinks = plain || causalOnly ? 0 : p.get("mask.sink_tokens").intValue();
        float softcap = plain || causalOnly ? 0 : p.get("mask.softcap").floatValue();
        float[] alibi = plain || causalOnly ? null : spec.getAlibiSlopes();
        double scale = p.get("mask.scale").floatValue();
        Pointer q = new Pointer(p.get("q").longValue());
        Pointer k = new Pointer(p.get("k").longValue());
        Pointer v = new Pointer(p.get("v").longValue());
        Pointer o = new Pointer(p.get("o").longValue());
        long lseAddr = p.get("lse").longValue();
        Pointer lse = lseAddr == 0 ? null : new Pointer(lseAddr);
        for (int b = 0; b < batch; b++) {
            int q0 = cuQ == null ? 0 : cuQ[b];
            int lq = cuQ == null ? p.get("lq").intValue() : cuQ[b + 1] - q0;
            int k0 = cuK == null ? 0 : cuK[b];
            int lk = cuK == null ? p.get("lk").intValue() : cuK[b + 1] - k0;
            for (int h = 0; h < hq; h++) {
                int kh = h / (hq / hkv);
                long qb = (cuQ == null ? b * p.get("q_batch_stride").longValue() : 0)
                        + h * p.get("q_head_stride").longValue();
                long ob = (cuQ == null ? b * p.get("o_batch_stride").longValue() : 0)
                        + h * p.get("o_head_stride").longValue();
                long kb = (cuK == null ? b * p.get("k_batch_stride").longValue() : 0)
                        + kh * p.get("k_head_stride").longValue();
                long vb = (cuK == null ? b * p.get("v_batch_stride").longValue() : 0)
                        + kh * p.get("v_head_stride").longValue();
                long lseRow = p.get("lse_row_stride").longValue();
                long lseOff = (cuQ == null ? b * p.get("lse_batch_stride").longValue() : q0 * lseRow)
                        + h * p.get("lse_head_stride").longValue();
                for (int i = 0; i < lq; i++) {
                    long pos = (long) i + lk - lq;
                    float[] qr = row(q, type, qb + (long) (q0 + i) * p.get("q_row_stride").longValue(), d);
                    double[] s = new double[lk];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < lk; j++) {
                        boolean visible = !(causal && j > pos) && !(wr >= 0 && j > pos + wr)
                                && !(wl >= 0 && j < pos - wl && j >= sinks);
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        float[] kr = row(k, type, kb + (long) (k0 + j) * p.get("k_row_stride").longValue(), d);
                        double dot = 0;
                        for (int x = 0; x < d; x++) {
                            dot += (double) qr[x] * kr[x];
                        }
                        double sc = dot * scale;
                        if (softcap > 0) {
                            sc = softcap * Math.tanh(sc / softcap);
                        }
                        if (alibi != null) {
                            sc -= alibi[h] * Math.abs((double) (pos - j));
                        }
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
                                continue;
                            }
                            float[] vr = row(v, type, vb + (long) (k0 + j) * p.get("v_row_stride").longValue(), d);
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
                    o.write(2 * (ob + (long) (q0 + i) * p.get("o_row_stride").longValue()), out, 0, d);
                    if (lse != null) {
                        lse.setFloat(4 * (lseOff + i * lseRow), (float) l);
                    }
                }
            }
        }
    }

    private static float[] row(Pointer base, DeviceDataType type, long element, int d) {
        short[] bits = base.getShortArray(2 * element, d);
        return HostFloats.fromBits(type, bits);
    }
}
