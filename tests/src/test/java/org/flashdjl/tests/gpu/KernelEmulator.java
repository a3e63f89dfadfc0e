package org.flashdjl.tests.gpu;

import com.sun.jna.Pointer;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.cuda.FlashParams;
import org.flashdjl.ops.cuda.FlashParams.Field;

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
        FlashParams p = call.getParams();
        String kernel = call.kernelName(90);
        boolean plain = forcePlain || kernel.endsWith("_plain");
        boolean causalOnly = kernel.endsWith("_causal");
        int batch = p.get(Field.BATCH).intValue();
        int hq = p.get(Field.HQ).intValue();
        int hkv = p.get(Field.HKV).intValue();
        int d = p.get(Field.HEAD_DIM).intValue();
        boolean causal = causalOnly || (!plain && p.get(Field.CAUSAL).intValue() != 0);
        int wl = plain || causalOnly ? -1 : p.get(Field.WINDOW_LEFT).intValue();
        int wr = plain || causalOnly ? -1 : p.get(Field.WINDOW_RIGHT).intValue();
        int sinks = plain || causalOnly ? 0 : p.get(Field.SINK_TOKENS).intValue();
        float softcap = plain || causalOnly ? 0 : p.get(Field.SOFTCAP).floatValue();
        float[] alibi = plain || causalOnly ? null : spec.getAlibiSlopes();
        double scale = p.get(Field.SCALE).floatValue();
        Pointer q = new Pointer(p.get(Field.Q).longValue());
        Pointer k = new Pointer(p.get(Field.K).longValue());
        Pointer v = new Pointer(p.get(Field.V).longValue());
        Pointer o = new Pointer(p.get(Field.O).longValue());
        long lseAddr = p.get(Field.LSE).longValue();
        Pointer lse = lseAddr == 0 ? null : new Pointer(lseAddr);
        for (int b = 0; b < batch; b++) {
            int q0 = cuQ == null ? 0 : cuQ[b];
            int lq = cuQ == null ? p.get(Field.LQ).intValue() : cuQ[b + 1] - q0;
            int k0 = cuK == null ? 0 : cuK[b];
            int lk = cuK == null ? p.get(Field.LK).intValue() : cuK[b + 1] - k0;
            for (int h = 0; h < hq; h++) {
                int kh = h / (hq / hkv);
                long qb = (cuQ == null ? b * p.get(Field.Q_BATCH_STRIDE).longValue() : 0)
                        + h * p.get(Field.Q_HEAD_STRIDE).longValue();
                long ob = (cuQ == null ? b * p.get(Field.O_BATCH_STRIDE).longValue() : 0)
                        + h * p.get(Field.O_HEAD_STRIDE).longValue();
                long kb = (cuK == null ? b * p.get(Field.K_BATCH_STRIDE).longValue() : 0)
                        + kh * p.get(Field.K_HEAD_STRIDE).longValue();
                long vb = (cuK == null ? b * p.get(Field.V_BATCH_STRIDE).longValue() : 0)
                        + kh * p.get(Field.V_HEAD_STRIDE).longValue();
                long lseRow = p.get(Field.LSE_ROW_STRIDE).longValue();
                long lseOff = (cuQ == null ? b * p.get(Field.LSE_BATCH_STRIDE).longValue() : q0 * lseRow)
                        + h * p.get(Field.LSE_HEAD_STRIDE).longValue();
                for (int i = 0; i < lq; i++) {
                    long pos = (long) i + lk - lq;
                    float[] qr = row(q, type, qb + (long) (q0 + i) * p.get(Field.Q_ROW_STRIDE).longValue(), d);
                    double[] s = new double[lk];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < lk; j++) {
                        boolean visible = !(causal && j > pos) && !(wr >= 0 && j > pos + wr)
                                && !(wl >= 0 && j < pos - wl && j >= sinks);
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        float[] kr = row(k, type, kb + (long) (k0 + j) * p.get(Field.K_ROW_STRIDE).longValue(), d);
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
                            float[] vr = row(v, type, vb + (long) (k0 + j) * p.get(Field.V_ROW_STRIDE).longValue(), d);
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
                    o.write(2 * (ob + (long) (q0 + i) * p.get(Field.O_ROW_STRIDE).longValue()), out, 0, d);
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
