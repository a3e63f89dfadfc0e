package org.flashdjl.examples.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.ContiguousKvCache;
import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.engine.cache.StreamingKvCache;
import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.safetensors.SafeDType;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Every supported family (and each RoPE rule) on a tiny random checkpoint against the float64 reference: Llama with
 * llama3 scaling, tied embeddings and q/k/v/o + MLP biases; Llama with YaRN; Mistral with a window on every layer and
 * head_dim != hidden / heads; Qwen2 with q/k/v biases and a window on the layers from {@code max_window_layers};
 * Gemma 2 with softcaps, alternating windows, {@code query_pre_attn_scalar != head_dim}, GeGLU, (1 + w) and sandwich
 * norms and scaled embeddings. Each also through the KV caches (incremental == full), the packed paged step, and
 * its config written and read back.
 */
class FamiliesTest {

    private static final double TOL = 2e-4;
    private static final long TOKEN_SEED = 11;

    @TempDir
    static Path tmp;

    /** A family case: its config, each layer's window as transformers' rule gives it, its RoPE frequencies. */
    enum Case {
        LLAMA3, LLAMA_YARN, MISTRAL, QWEN2, GEMMA2;

        LlamaConfig config() {
            LlamaConfig.Builder b = LlamaConfig.builder();
            switch (this) {
                case LLAMA3:
                    return b.setSizes(64, 96, 2, 4, 2, 256).optRope(500000, RopeScaling.llama3(8, 1, 4, 16))
                            .optTieWordEmbeddings(true).optAttentionBias(true).optMlpBias(true).optRmsNormEps(1e-5)
                            .optSpecialTokens(1, 2).build();
                case LLAMA_YARN:
                    return b.setSizes(64, 96, 2, 4, 2, 256).optMaxPositions(64)
                            .optRope(10000, RopeScaling.yarn(4, 16, 32, 1, RopeScaling.yarnAttentionFactor(4, 0, 0),
                                    true))
                            .optSpecialTokens(1, 2).build();
                case MISTRAL:
                    return b.optFamily(LlamaConfig.Family.MISTRAL).setSizes(64, 96, 2, 4, 2, 256).optHeadDim(32)
                            .optSlidingWindow(4, 0).optSpecialTokens(1, 2).build();
                case QWEN2:
                    return b.optFamily(LlamaConfig.Family.QWEN2).setSizes(64, 96, 2, 4, 2, 256)
                            .optRope(1e6, RopeScaling.none()).optTieWordEmbeddings(true).optSlidingWindow(3, 1)
                            .optSpecialTokens(-1, 2).build();
                case GEMMA2:
                    return b.optFamily(LlamaConfig.Family.GEMMA2).setSizes(64, 96, 2, 4, 2, 256).optHeadDim(32)
                            .optTieWordEmbeddings(true).optSlidingWindow(3, 0).optGemmaAttention(20, 3.0, 2.0)
                            .optSpecialTokens(2, 1).build();
                default:
                    throw new IllegalStateException();
            }
        }

        /** Each layer's window per transformers' rule for the family (-1: full attention). */
        int[] windows() {
            switch (this) {
                case MISTRAL:
                    return new int[] {4, 4};
                case QWEN2:
                    return new int[] {-1, 3}; // layers >= max_window_layers (1) slide
                case GEMMA2:
                    return new int[] {3, -1}; // sliding if (i + 1) % 2 != 0
                default:
                    return new int[] {-1, -1};
            }
        }

        /** RoPE inverse frequencies per transformers' formula for the case, written here independently. */
        double[] invFreq(LlamaConfig c) {
            int d = c.getHeadDim();
            double[] inv = LlamaReference.plainInvFreq(c.getRopeTheta(), d, 1);
            if (this == LLAMA3) { // wavelength bands against original_max_position_embeddings 16, factor 8
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > 16 / 1.0) {
                        inv[i] = inv[i] / 8;
                    } else if (wavelen >= 16 / 4.0) {
                        double smooth = (16 / wavelen - 1) / (4 - 1);
                        inv[i] = (1 - smooth) * inv[i] / 8 + smooth * inv[i];
                    }
                }
            } else if (this == LLAMA_YARN) { // factor 4, original 16, beta_fast 32, beta_slow 1, truncated range
                double low = Math.max(0, Math.floor(d * Math.log(16 / (32 * 2 * Math.PI)) / (2 * Math.log(10000))));
                double high = Math.min(d - 1, Math.ceil(d * Math.log(16 / (1 * 2 * Math.PI)) / (2 * Math.log(10000))));
                for (int i = 0; i < inv.length; i++) {
                    double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
                    inv[i] = (inv[i] / 4) * ramp + inv[i] * (1 - ramp);
                }
            }
            return inv;
        }

        double ropeAmplitude() {
            return this == LLAMA_YARN ? 0.1 * Math.log(4) + 1 : 1;
        }
    }

    private static int[] tokens() {
        Random r = new Random(TOKEN_SEED);
        int[] t = new int[19];
        for (int i = 0; i < t.length; i++) {
            t[i] = r.nextInt(256);
        }
        return t;
    }

    private static NDArray tokenArray(NDManager m, int[] ids) {
        return m.create(Arrays.stream(ids).asLongStream().toArray(), new Shape(1, ids.length));
    }

    private static Path write(Case c) throws Exception {
        Path dir = tmp.resolve(c.name());
        DemoCheckpoint.write(dir, c.config(), 100 + c.ordinal(), SafeDType.F32);
        return dir;
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void logitsMatchTheFloat64ReferenceAndEveryPathAgrees(Case c) throws Exception {
        Path dir = write(c);
        LlamaConfig config = LlamaConfig.read(dir.resolve("config.json"));
        assertEquals(c.config().toJson(), config.toJson(), "config round trip");
        for (int i = 0; i < config.getNumLayers(); i++) {
            assertEquals(c.windows()[i], config.getSlidingWindow(i), c + " layer " + i + " window");
        }
        int[] tokens = tokens();
        double[][] ref = new LlamaReference(dir, config).logits(tokens, c.windows(), 0, c.invFreq(config),
                c.ropeAmplitude());
        try (NDManager m = NDManager.newBaseManager()) {
            for (String backend : new String[] {"math", "online"}) {
                LlamaModel model = LlamaLoader.load(dir, m, AttentionOptions.builder().optBackend(backend).build(),
                        DataType.FLOAT32);
                ParameterStore ps = new ParameterStore(m, false);
                float[] full = model.forward(ps, tokenArray(m, tokens), null, false).toFloatArray();
                assertMatches(ref, full, c + " " + backend + " (token seed " + TOKEN_SEED + ")");
                // the KV caches, one per layer as the layer's window wants, in chunks: same logits
                float[] inc = incremental(model, m, tokens, new int[] {7, 1, 1, 4, 1, 1, 2, 1, 1});
                assertClose(full, inc, 1e-4, c + " " + backend + " incremental vs full");
                // a packed continuous-batching step over the paged store: same last-position logits
                assertPackedMatches(model, m, tokens, c + " " + backend);
            }
        }
    }

    private static float[] incremental(LlamaModel model, NDManager m, int[] ids, int[] chunks) {
        ParameterStore ps = new ParameterStore(m, false);
        KvCache[] caches = model.newCaches(m, -1);
        for (int i = 0; i < caches.length; i++) {
            assertTrue(model.getSlidingWindow(i) > 0 ? caches[i] instanceof StreamingKvCache
                    : caches[i] instanceof ContiguousKvCache, "layer " + i + " cache kind");
        }
        NDList outs = new NDList();
        int pos = 0;
        for (int c : chunks) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray logits = model.forward(ps, tokenArray(m, Arrays.copyOfRange(ids, pos, pos + c)), caches,
                        false);
                NDScope.unregister(logits);
                outs.add(logits);
            }
            pos += c;
        }
        for (KvCache c : caches) {
            c.close();
        }
        return NDArrays.concat(outs, 1).toFloatArray();
    }

    private static void assertPackedMatches(LlamaModel model, NDManager m, int[] tokens, String what) {
        ParameterStore ps = new ParameterStore(m, false);
        try (SequenceKvStore store = model.newPagedStore(16, 4)) {
            store.addSequence(1);
            int[] steps = {9, 1, 1, 5, 1, 2};
            int pos = 0;
            for (int n : steps) {
                long[] packed = Arrays.stream(Arrays.copyOfRange(tokens, pos, pos + n)).asLongStream().toArray();
                pos += n;
                float[] got = model.forwardPacked(ps, m.create(packed), new long[] {1}, new int[] {n}, store)
                        .toFloatArray(); // [1, vocab]
                float[] want = model.forward(ps, tokenArray(m, Arrays.copyOf(tokens, pos)), null, true)
                        .toFloatArray();
                assertClose(want, got, 1e-4, what + " paged step at " + pos);
            }
        }
    }

    private static void assertMatches(double[][] ref, float[] logits, String what) {
        int vocab = ref[0].length;
        double max = 0;
        double scale = 0;
        for (int t = 0; t < ref.length; t++) {
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, Math.abs(ref[t][v] - logits[t * vocab + v]));
                scale = Math.max(scale, Math.abs(ref[t][v]));
            }
        }
        assertTrue(scale > 0.1, what + ": degenerate logits");
        assertTrue(max <= TOL * Math.max(1, scale), what + ": max |logits - float64 reference| = " + max
                + " (logit scale " + scale + ")");
    }

    private static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        double max = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i] - got[i]));
        }
        assertTrue(max < tol, what + ": max |diff| " + max);
    }
}
