package org.flashdjl.examples.llama;

import org.flashdjl.examples.safetensors.SafetensorsFile;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A float64 LLaMA forward pass in plain Java loops, reading the checkpoint with the safetensors reader only (no
 * DJL, no FlashDJL block). Written from the architecture's definition: RMSNorm, rotate-half RoPE, GQA causal
 * attention with an optional sliding window and sinks, SwiGLU, optional tied head. Plain and linear RoPE.
 */
public final class LlamaReference {

    private final LlamaConfig c;
    private final Map<String, double[]> w = new HashMap<>();
    private final double ropeDivisor;

    LlamaReference(Path dir, LlamaConfig config, double linearRopeFactor) throws IOException {
        this.c = config;
        this.ropeDivisor = linearRopeFactor;
        for (Path f : LlamaLoader.safetensorsFiles(dir)) {
            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                for (String name : sf.getTensors().keySet()) {
                    float[] x = sf.readFloats(name);
                    double[] d = new double[x.length];
                    for (int i = 0; i < x.length; i++) {
                        d[i] = x[i];
                    }
                    w.put(name, d);
                }
            }
        }
    }

    /**
     * Loads a checkpoint directory with its own config (plain RoPE), for tests outside this package.
     *
     * @param dir the checkpoint directory
     * @return the reference model
     * @throws IOException if the checkpoint cannot be read
     */
    public static LlamaReference forTests(Path dir) throws IOException {
        return new LlamaReference(dir, LlamaConfig.read(dir.resolve("config.json")), 1);
    }

    /**
     * Returns the logits of a token sequence, each position seeing what the mask allows.
     *
     * @param tokens the sequence
     * @param window keys each query sees (itself included), or -1
     * @param sinks sink tokens with a window
     * @return logits [T][vocab]
     */
    public double[][] logits(int[] tokens, int window, int sinks) {
        int t = tokens.length;
        int h = c.getHiddenSize();
        int hq = c.getNumHeads();
        int hkv = c.getNumKvHeads();
        int d = c.getHeadDim();
        double[][] x = new double[t][h];
        double[] emb = w.get("model.embed_tokens.weight");
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < h; j++) {
                x[i][j] = emb[tokens[i] * h + j];
            }
        }
        for (int l = 0; l < c.getNumLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] xn = rms(x, w.get(p + "input_layernorm.weight"));
            double[][] q = linear(xn, w.get(p + "self_attn.q_proj.weight"), w.get(p + "self_attn.q_proj.bias"),
                    hq * d);
            double[][] k = linear(xn, w.get(p + "self_attn.k_proj.weight"), w.get(p + "self_attn.k_proj.bias"),
                    hkv * d);
            double[][] v = linear(xn, w.get(p + "self_attn.v_proj.weight"), w.get(p + "self_attn.v_proj.bias"),
                    hkv * d);
            rope(q, hq, d);
            rope(k, hkv, d);
            double[][] att = new double[t][hq * d];
            for (int head = 0; head < hq; head++) {
                int kvh = head / (hq / hkv);
                for (int i = 0; i < t; i++) {
                    double[] s = new double[t];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < t; j++) {
                        boolean visible = j <= i && (window <= 0 || j >= i - window + 1 || j < sinks);
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int e = 0; e < d; e++) {
                            dot += q[i][head * d + e] * k[j][kvh * d + e];
                        }
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) {
                        s[j] = s[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int j = 0; j < t; j++) {
                        for (int e = 0; e < d; e++) {
                            att[i][head * d + e] += s[j] / sum * v[j][kvh * d + e];
                        }
                    }
                }
            }
            double[][] o = linear(att, w.get(p + "self_attn.o_proj.weight"), w.get(p + "self_attn.o_proj.bias"), h);
            add(x, o);
            double[][] xn2 = rms(x, w.get(p + "post_attention_layernorm.weight"));
            int im = c.getIntermediateSize();
            double[][] g = linear(xn2, w.get(p + "mlp.gate_proj.weight"), null, im);
            double[][] u = linear(xn2, w.get(p + "mlp.up_proj.weight"), null, im);
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < im; j++) {
                    double gg = g[i][j];
                    g[i][j] = gg / (1 + Math.exp(-gg)) * u[i][j];
                }
            }
            add(x, linear(g, w.get(p + "mlp.down_proj.weight"), null, h));
        }
        double[][] xn = rms(x, w.get("model.norm.weight"));
        double[] head = c.isTieWordEmbeddings() ? w.get("model.embed_tokens.weight") : w.get("lm_head.weight");
        return linear(xn, head, null, c.getVocabSize());
    }

    private double[][] rms(double[][] x, double[] weight) {
        double[][] out = new double[x.length][x[0].length];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) {
                ss += v * v;
            }
            double r = 1 / Math.sqrt(ss / x[i].length + c.getRmsNormEps());
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * r * weight[j];
            }
        }
        return out;
    }

    // y = x W^T + b, W [out, in]
    private static double[][] linear(double[][] x, double[] weight, double[] bias, int outDim) {
        int in = x[0].length;
        double[][] y = new double[x.length][outDim];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < outDim; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int j = 0; j < in; j++) {
                    s += x[i][j] * weight[o * in + j];
                }
                y[i][o] = s;
            }
        }
        return y;
    }

    private void rope(double[][] x, int heads, int d) {
        for (int pos = 0; pos < x.length; pos++) {
            for (int head = 0; head < heads; head++) {
                for (int i = 0; i < d / 2; i++) {
                    double freq = 1 / Math.pow(c.getRopeTheta(), 2.0 * i / d) / ropeDivisor;
                    double a = pos * freq;
                    double x1 = x[pos][head * d + i];
                    double x2 = x[pos][head * d + i + d / 2];
                    x[pos][head * d + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
                    x[pos][head * d + i + d / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
                }
            }
        }
    }

    private static void add(double[][] x, double[][] y) {
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < x[i].length; j++) {
                x[i][j] += y[i][j];
            }
        }
    }
}
