package org.flashdjl.tests.gpu;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.testing.Reference;

/**
 * The "low-precision math" of the flash-attention error budget: the same attention as {@link Reference}, in
 * float32, rounding to the kernel's dtype where a plain fp16/bf16 implementation would (scores after scale,
 * softcap and ALiBi; the softmax probabilities; the output). The budget is then
 * {@code max|out - ref| <= 2 * max|lowprec - ref| + 1e-5}, with {@code ref} the float64 reference.
 */
final class LowPrecisionReference {

    private LowPrecisionReference() {}

    /**
     * Computes the low-precision output, flat bhsd [B, Hq, Lq, D] (Reference's layout and options).
     */
    static float[] attention(DeviceDataType type, float[] q, float[] k, float[] v, int b, int hq, int hkv, int lq,
            int lk, int d, Reference.Options o) {
        float[] out = new float[b * hq * lq * d];
        int group = hq / hkv;
        long qStart = o.queryStart != null ? o.queryStart : (long) lk - lq;
        float[] s = new float[lk];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < hq; h++) {
                int kh = h / group;
                for (int i = 0; i < lq; i++) {
                    long pos = qStart + i;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < lk; j++) {
                        long key = o.keyStart + j;
                        boolean visible = !(o.causal && key > pos)
                                && !(o.windowRight >= 0 && key > pos + o.windowRight)
                                && !(o.windowLeft >= 0 && key < pos - o.windowLeft && key >= o.sinkTokens);
                        if (!visible) {
                            s[j] = Float.NEGATIVE_INFINITY;
                            continue;
                        }
                        float dot = 0;
                        int qo = ((bi * hq + h) * lq + i) * d;
                        int ko = ((bi * hkv + kh) * lk + j) * d;
                        for (int x = 0; x < d; x++) {
                            dot += q[qo + x] * k[ko + x];
                        }
                        float sc = HostFloats.round(type, dot * (float) o.scale);
                        if (o.softcap > 0) {
                            float cap = (float) o.softcap;
                            sc = HostFloats.round(type, cap * (float) Math.tanh(sc / cap));
                        }
                        if (o.alibi != null) {
                            sc = HostFloats.round(type, sc - o.alibi[h] * Math.abs((float) (pos - key)));
                        }
                        s[j] = sc;
                        max = Math.max(max, sc);
                    }
                    if (max == Float.NEGATIVE_INFINITY) {
                        continue; // out stays 0
                    }
                    float sum = 0;
                    for (int j = 0; j < lk; j++) {
                        float p = (float) Math.exp(s[j] - max);
                        s[j] = p;
                        sum += p;
                    }
                    int row = (bi * hq + h) * lq + i;
                    float[] acc = new float[d];
                    for (int j = 0; j < lk; j++) {
                        if (s[j] == 0) {
                            continue;
                        }
                        float p = HostFloats.round(type, s[j] / sum);
                        int vo = ((bi * hkv + kh) * lk + j) * d;
                        for (int x = 0; x < d; x++) {
                            acc[x] += p * v[vo + x];
                        }
                    }
                    for (int x = 0; x < d; x++) {
                        out[row * d + x] = HostFloats.round(type, acc[x]);
                    }
                }
            }
        }
        return out;
    }
}
