package org.flashdjl.examples.llama;

import org.flashdjl.examples.safetensors.SafetensorsFile;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A float64 forward pass of the LLaMA family in plain Java loops, reading the checkpoint with the safetensors reader
 * only (no DJL, no FlashDJL block). Written from the architectures' definitions (transformers' modeling files):
 * RMSNorm (Llama: {@code w * n}; Gemma: {@code (1 + w) * n}), rotate-half RoPE from given inverse frequencies and
 * amplitude, GQA causal attention with a per-layer sliding window and sinks, optional scale and logit softcap,
 * SwiGLU or tanh-GeGLU, Gemma's embedding scaling and sandwich norms, optional tied head and final softcap.
 *
 * <p>What the family does is taken from the config's plain values (sizes, softcaps, activation, biases); which
 * layers slide and the RoPE frequencies are given by the test, so the config's rules are checked, not reused.
 */
public final class LlamaReference {

    private final LlamaConfig c;
    private final Map<String, double[]> w = new HashMap<>();
    private final double ropeDivisor;

    /**
     * Reads a checkpoint.
     *
     * @param dir the checkpoint directory
     * @param config its config
     * @throws IOException if it cannot be read
     */
    public LlamaReference(Path dir, LlamaConfig config) throws IOException {
        this(dir, config, 1);
    }

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
     * Returns {@code theta^(-2i/d) / divisor}: plain (divisor 1) or linear-scaled RoPE frequencies.
     *
     * @param theta the base
     * @param d the head dim
     * @param divisor the linear factor (1: none)
     * @return the frequencies [d / 2]
     */
    public static double[] plainInvFreq(double theta, int d, double divisor) {
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1 / Math.pow(theta, 2.0 * i / d) / divisor;
        }
        return inv;
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
     * Returns the logits [T][vocab] of a token sequence, every layer with the same window (or none), plain /
     * linear RoPE of the config's theta.
     *
     * @param tokens the sequence
     * @param window keys each query sees (itself included), or -1
     * @param sinks sink tokens with a window
     * @return logits [T][vocab]
     */
    public double[][] logits(int[] tokens, int window, int sinks) {
        int[] windows = new int[c.getNumLayers()];
        Arrays.fill(windows, window);
        return logits(tokens, windows, sinks, plainInvFreq(c.getRopeTheta(), c.getHeadDim(), ropeDivisor), 1);
    }

    /**
     * Logits [T][vocab] of a token sequence.
     *
     * @param tokens the ids
     * @param windows each layer's window (keys a query sees, itself included), {@code <= 0} for none
     * @param sinks leading keys always visible in windowed layers
     * @param invFreq RoPE inverse frequencies [D/2]
     * @param ropeAmplitude the factor on cos and sin (YaRN's attention factor; 1 otherwise)
     * @return the logits
     */
    public double[][] logits(int[] tokens, int[] windows, int sinks, double[] invFreq, double ropeAmplitude) {
        boolean gemma = c.getFamily() == LlamaConfig.Family.GEMMA2;
        int t = tokens.length;
        int h = c.getHiddenSize();
        int hq = c.getNumHeads();
        int hkv = c.getNumKvHeads();
        int d = c.getHeadDim();
        double scale = c.getQueryPreAttnScalar() > 0 ? 1 / Math.sqrt(c.getQueryPreAttnScalar()) : 1 / Math.sqrt(d);
        double[][] x = new double[t][h];
        double[] emb = w.get("model.embed_tokens.weight");
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < h; j++) {
                x[i][j] = emb[tokens[i] * h + j] * (gemma ? Math.sqrt(h) : 1);
            }
        }
        for (int l = 0; l < c.getNumLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] xn = rms(x, w.get(p + "input_layernorm.weight"), gemma);
            double[][] q = linear(xn, p + "self_attn.q_proj", hq * d);
            double[][] k = linear(xn, p + "self_attn.k_proj", hkv * d);
            double[][] v = linear(xn, p + "self_attn.v_proj", hkv * d);
            rope(q, hq, d, invFreq, ropeAmplitude);
            rope(k, hkv, d, invFreq, ropeAmplitude);
            int window = windows[l];
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
                        s[j] = softcap(dot * scale, c.getAttnLogitSoftcap());
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
            double[][] o = linear(att, p + "self_attn.o_proj", h);
            add(x, gemma ? rms(o, w.get(p + "post_attention_layernorm.weight"), true) : o);
            double[][] xn2 = rms(x, w.get(p + (gemma ? "pre_feedforward_layernorm.weight"
                    : "post_attention_layernorm.weight")), gemma);
            int im = c.getIntermediateSize();
            double[][] g = linear(xn2, p + "mlp.gate_proj", im);
            double[][] u = linear(xn2, p + "mlp.up_proj", im);
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < im; j++) {
                    g[i][j] = act(g[i][j]) * u[i][j];
                }
            }
            double[][] m = linear(g, p + "mlp.down_proj", h);
            add(x, gemma ? rms(m, w.get(p + "post_feedforward_layernorm.weight"), true) : m);
        }
        double[][] xn = rms(x, w.get("model.norm.weight"), gemma);
        double[] head = c.isTieWordEmbeddings() ? w.get("model.embed_tokens.weight") : w.get("lm_head.weight");
        double[][] logits = linear(xn, head, null, c.getVocabSize());
        for (double[] row : logits) {
            for (int j = 0; j < row.length; j++) {
                row[j] = softcap(row[j], c.getFinalLogitSoftcap());
            }
        }
        return logits;
    }

    private double act(double x) {
        if (c.getActivation() == GatedMlp.Activation.SILU) {
            return x / (1 + Math.exp(-x));
        }
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    private static double softcap(double s, double cap) {
        return cap > 0 ? cap * Math.tanh(s / cap) : s;
    }

    private double[][] rms(double[][] x, double[] weight, boolean unitOffset) {
        double[][] out = new double[x.length][x[0].length];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) {
                ss += v * v;
            }
            double r = 1 / Math.sqrt(ss / x[i].length + c.getRmsNormEps());
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * r * (unitOffset ? 1 + weight[j] : weight[j]);
            }
        }
        return out;
    }

    private double[][] linear(double[][] x, String prefix, int outDim) {
        return linear(x, w.get(prefix + ".weight"), w.get(prefix + ".bias"), outDim);
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

    private static void rope(double[][] x, int heads, int d, double[] invFreq, double amplitude) {
        for (int pos = 0; pos < x.length; pos++) {
            for (int head = 0; head < heads; head++) {
                for (int i = 0; i < d / 2; i++) {
                    double a = pos * invFreq[i];
                    double cos = Math.cos(a) * amplitude;
                    double sin = Math.sin(a) * amplitude;
                    double x1 = x[pos][head * d + i];
                    double x2 = x[pos][head * d + i + d / 2];
                    x[pos][head * d + i] = x1 * cos - x2 * sin;
                    x[pos][head * d + i + d / 2] = x2 * cos + x1 * sin;
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
