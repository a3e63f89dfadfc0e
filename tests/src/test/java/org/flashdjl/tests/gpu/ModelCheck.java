package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * The LLaMA checks of the GPU suite, on any device: a small random checkpoint (written by {@link DemoCheckpoint},
 * loaded by {@link LlamaLoader} like any Hugging Face checkpoint), its logits against the same weights on the CPU
 * in fp32, and greedy tokens against the argmax of a full (no cache) recomputation on the CPU in fp32.
 *
 * <p>Budget, the flash-attention rule applied to logits: {@code max(2 x max|cpu fp16 - cpu fp32|,}
 * {@link BlockCheck#FP16_FLOOR} {@code x max(1, max|cpu fp32|))} over the same token sequence. A position's token
 * is checked only where the fp32 top-2 margin exceeds the budget: below it, fp16 rounding may rightly pick the
 * other token.
 */
final class ModelCheck {

    private ModelCheck() {}

    /**
     * The test architecture: hidden 512, 2 layers, 8 query heads over 2 key/value heads of dim 64 (GQA 4:1), MLP
     * 1024, the byte vocabulary (259), RoPE theta 10000, 16384 positions.
     *
     * @return the config
     */
    static LlamaConfig config() {
        return LlamaConfig.builder().setSizes(512, 1024, 2, 8, 2, ByteTokenizer.VOCAB_SIZE)
                .optRope(10000, RopeScaling.none()).optRmsNormEps(1e-5).optMaxPositions(16384)
                .optSpecialTokens(ByteTokenizer.BOS, ByteTokenizer.EOS).build();
    }

    /**
     * Writes the test checkpoint (fp32 safetensors, seeded weights).
     *
     * @param dir the directory
     * @param seed the weights' seed
     * @return {@code dir}
     * @throws IOException if it cannot be written
     */
    static Path write(Path dir, long seed) throws IOException {
        DemoCheckpoint.write(dir, config(), seed, SafeDType.F32);
        return dir;
    }

    /**
     * Loads a checkpoint with the {@code auto} attention backend.
     *
     * @param dir the checkpoint
     * @param m the manager that owns the weights (its device is the model's)
     * @param type the compute dtype
     * @return the model
     * @throws IOException if it cannot be read
     */
    static LlamaModel load(Path dir, NDManager m, DataType type) throws IOException {
        return LlamaLoader.load(dir, m, AttentionOptions.builder().optBackend("auto").build(), type);
    }

    /**
     * Returns the logits of a full forward pass (no cache) of rows of equal length.
     *
     * @param model the model
     * @param m a manager on the model's device
     * @param ids the token rows [B][T]
     * @return logits [B, T, vocab], flat, fp32
     */
    static float[] logits(LlamaModel model, NDManager m, int[][] ids) {
        int t = ids[0].length;
        long[] flat = new long[ids.length * t];
        for (int b = 0; b < ids.length; b++) {
            for (int i = 0; i < t; i++) {
                flat[b * t + i] = ids[b][i];
            }
        }
        try (NDManager s = m.newSubManager()) {
            NDArray logits = model.forward(new ParameterStore(s, false), s.create(flat, new Shape(ids.length, t)), null,
                    false); // [B, T, vocab]
            assertEquals(DataType.FLOAT32, logits.getDataType(), "logits dtype");
            assertEquals(m.getDevice(), logits.getDevice(), "logits device");
            return logits.toFloatArray();
        }
    }

    /**
     * Returns the fp16 budget of logits.
     *
     * @param ref32 logits of the CPU fp32 model
     * @param cpu16 logits of the CPU fp16 model on the same tokens
     * @return {@code max(2 x max|cpu16 - ref32|, floor x max(1, max|ref32|))}
     */
    static double budget(float[] ref32, float[] cpu16) {
        double maxRef = 0;
        double err = 0;
        for (int i = 0; i < ref32.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref32[i]));
            err = Math.max(err, Math.abs((double) cpu16[i] - ref32[i]));
        }
        return Math.max(2 * err, BlockCheck.FP16_FLOOR * Math.max(1, maxRef));
    }

    /**
     * Checks logits against the CPU fp32 ones: max abs error within the budget, the same top-1 token wherever the
     * reference's top-2 margin exceeds the budget.
     *
     * @param what the case, for messages
     * @param ref logits of the CPU fp32 model [rows, vocab]
     * @param got the candidate's logits
     * @param vocab the vocabulary size
     * @param budget the budget
     * @param seed the seed of the tokens and weights
     * @return the number of rows whose top-1 token was checked
     */
    static int assertLogits(String what, float[] ref, float[] got, int vocab, double budget, String seed) {
        assertEquals(ref.length, got.length, what + ": logits count");
        double err = 0;
        int worst = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = Math.abs((double) got[i] - ref[i]);
            if (!(d <= err)) {
                err = d;
                worst = i;
            }
        }
        assertTrue(err <= budget, String.format(Locale.ROOT, "%s: max |logit - cpu fp32 logit| = %.4g > budget %.4g"
                + " (row %d, token %d: %.5g vs %.5g); %s", what, err, budget, worst / vocab, worst % vocab, got[worst],
                ref[worst], seed));
        int checked = 0;
        for (int row = 0; row < ref.length / vocab; row++) {
            int[] top = top2(ref, row * vocab, vocab);
            double margin = ref[row * vocab + top[0]] - ref[row * vocab + top[1]];
            if (margin > budget) {
                checked++;
                int mine = top2(got, row * vocab, vocab)[0];
                assertEquals(top[0], mine, String.format(Locale.ROOT, "%s: row %d: top-1 token %d, cpu fp32 %d"
                        + " (its margin %.4g > budget %.4g); %s", what, row, mine, top[0], margin, budget, seed));
            }
        }
        System.out.printf(Locale.ROOT, "%s: max |logit - cpu fp32| %.4g, budget %.4g, top-1 checked on %d/%d rows%n",
                what, err, budget, checked, ref.length / vocab);
        return checked;
    }

    /** The CPU fp32 logits of every position of one sequence, and the fp16 budget on it. */
    record Recompute(float[] logits, double budget, int vocab) {
        /** @return the top-2 margin of the logits at a position */
        double margin(int pos) {
            int[] t = top2(logits, pos * vocab, vocab);
            return logits[pos * vocab + t[0]] - logits[pos * vocab + t[1]];
        }

        /** @return the argmax of the logits at a position */
        int argmax(int pos) {
            return top2(logits, pos * vocab, vocab)[0];
        }
    }

    /**
     * Recomputes a sequence without a cache on the CPU in fp32 and fp16.
     *
     * @param cpu32 the CPU fp32 model
     * @param cpu16 the CPU fp16 model (same weights)
     * @param cpu a CPU manager
     * @param seq the tokens
     * @return the fp32 logits of every position and the budget
     */
    static Recompute recompute(LlamaModel cpu32, LlamaModel cpu16, NDManager cpu, int[] seq) {
        float[] l32 = logits(cpu32, cpu, new int[][] {seq});
        float[] l16 = logits(cpu16, cpu, new int[][] {seq});
        return new Recompute(l32, budget(l32, l16), cpu32.getConfig().getVocabSize());
    }

    /**
     * Checks greedy tokens: token {@code i} must be the argmax of a full recomputation of the prompt and the tokens
     * before it (all positions of one forward pass over the sequence: the model is causal), at every position whose
     * fp32 top-2 margin exceeds the budget; at least half the positions must be checked.
     *
     * @param what the case, for messages
     * @param cpu32 the CPU fp32 model
     * @param cpu16 the CPU fp16 model
     * @param cpu a CPU manager
     * @param prompt the prompt ids
     * @param tokens the generated ids
     * @param seed the seeds, for messages
     * @return the number of tokens checked
     */
    static int assertGreedy(String what, LlamaModel cpu32, LlamaModel cpu16, NDManager cpu, int[] prompt,
            int[] tokens, String seed) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + tokens.length - 1);
        System.arraycopy(tokens, 0, seq, prompt.length, tokens.length - 1);
        Recompute r = recompute(cpu32, cpu16, cpu, seq);
        int checked = 0;
        for (int i = 0; i < tokens.length; i++) {
            int pos = prompt.length - 1 + i;
            double margin = r.margin(pos);
            if (margin > r.budget()) {
                checked++;
                assertEquals(r.argmax(pos), tokens[i], String.format(Locale.ROOT, "%s: generated token %d (after a"
                        + " %d-token prompt) is %d, the full fp32 recompute's argmax is %d (margin %.4g > budget"
                        + " %.4g); tokens %s; %s", what, i, prompt.length, tokens[i], r.argmax(pos), margin,
                        r.budget(), Arrays.toString(tokens), seed));
            }
        }
        System.out.printf(Locale.ROOT, "%s: %d greedy tokens, %d checked against the full recompute (budget %.4g)%n",
                what, tokens.length, checked, r.budget());
        assertTrue(2 * checked >= tokens.length, what + ": only " + checked + " of " + tokens.length + " positions have"
                + " a top-2 margin above the budget " + r.budget() + ": the check says too little; " + seed);
        return checked;
    }

    /**
     * Checks that two greedy generations of the same prompt (e.g. batched and single-stream) agree: equal until
     * their first difference, which is allowed only at a near tie of the full fp32 recomputation (top-2 margin
     * within the budget), after which the contexts differ and nothing more is compared.
     *
     * @param what the case, for messages
     * @param cpu32 the CPU fp32 model
     * @param cpu16 the CPU fp16 model
     * @param cpu a CPU manager
     * @param prompt the prompt ids
     * @param expected the reference generation
     * @param got the other generation
     * @param seed the seeds, for messages
     * @return the index of the first difference, or -1 when equal
     */
    static int assertSameGreedy(String what, LlamaModel cpu32, LlamaModel cpu16, NDManager cpu, int[] prompt,
            int[] expected, int[] got, String seed) {
        int n = Math.min(expected.length, got.length);
        for (int i = 0; i < n; i++) {
            if (expected[i] != got[i]) {
                int[] seq = Arrays.copyOf(prompt, prompt.length + i);
                System.arraycopy(expected, 0, seq, prompt.length, i);
                Recompute r = recompute(cpu32, cpu16, cpu, seq);
                double margin = r.margin(seq.length - 1);
                assertTrue(margin <= r.budget(), String.format(Locale.ROOT, "%s: token %d is %d, the reference run's"
                        + " is %d, but the full fp32 recompute is no near tie there (margin %.4g > budget %.4g,"
                        + " argmax %d); expected %s, got %s; %s", what, i, got[i], expected[i], margin, r.budget(),
                        r.argmax(seq.length - 1), Arrays.toString(expected), Arrays.toString(got), seed));
                System.out.printf(Locale.ROOT, "%s: diverged at token %d, a near tie (margin %.4g <= budget %.4g)%n",
                        what, i, margin, r.budget());
                return i;
            }
        }
        assertEquals(expected.length, got.length, what + ": token counts (equal tokens up to the shorter: "
                + Arrays.toString(got) + "); " + seed);
        return -1;
    }

    /**
     * Draws a prompt: BOS, then random printable bytes.
     *
     * @param rnd the random source
     * @param length the length, BOS included
     * @return the ids
     */
    static int[] prompt(Random rnd, int length) {
        int[] ids = new int[length];
        ids[0] = ByteTokenizer.BOS;
        for (int i = 1; i < length; i++) {
            ids[i] = 0x20 + rnd.nextInt(0x5f);
        }
        return ids;
    }

    // {argmax, second} of x[offset .. offset + n)
    static int[] top2(float[] x, int offset, int n) {
        int best = 0;
        int second = 1;
        if (x[offset + 1] > x[offset]) {
            best = 1;
            second = 0;
        }
        for (int i = 2; i < n; i++) {
            if (x[offset + i] > x[offset + best]) {
                second = best;
                best = i;
            } else if (x[offset + i] > x[offset + second]) {
                second = i;
            }
        }
        return new int[] {best, second};
    }
}
