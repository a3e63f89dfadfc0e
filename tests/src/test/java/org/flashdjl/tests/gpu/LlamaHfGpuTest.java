package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * The LLaMA model in fp16 on the GPU against Hugging Face transformers on the same checkpoint: the Llama-3.2-1B-shaped
 * checkpoint that {@code tests/gpu/hf_model_bench.py write DIR} makes on the GPU machine, with transformers' logits
 * of its model in fp32 (the truth) and in fp16 (the fp16 error budget). {@code -Dflashdjl.hf1b.dir=DIR}; skipped
 * without it.
 *
 * <p>Pass: max |ours - HF fp32| over all prompt positions and the vocabulary {@code <= 2 x max |HF fp16 - HF fp32|}
 * (the flash-attention budget rule), and the same top-1 token as HF fp32 at every position whose fp32 top-1 margin
 * exceeds that budget.
 */
@Tag("gpu")
@Tag("djl")
class LlamaHfGpuTest {

    @Test
    void fp16LogitsMatchTransformers() throws IOException {
        DjlGpu.assumeFusedKernels();
        String d = System.getProperty("flashdjl.hf1b.dir");
        Assumptions.assumeTrue(d != null && Files.isRegularFile(Paths.get(d, "reference.json")),
                () -> "no -Dflashdjl.hf1b.dir with reference.json (tests/gpu/hf_model_bench.py write DIR)");
        Path dir = Paths.get(d);
        JsonObject ref = JsonParser.parseString(Files.readString(dir.resolve("reference.json"),
                StandardCharsets.UTF_8)).getAsJsonObject();
        JsonArray idsJson = ref.getAsJsonArray("prompt_ids");
        long[] ids = new long[idsJson.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = idsJson.get(i).getAsLong();
        }
        float[] hf32 = floats(dir.resolve("logits_hf_fp32.bin"));
        float[] hf16 = floats(dir.resolve("logits_hf_fp16.bin"));
        try (NDManager manager = NDManager.newBaseManager(Device.gpu())) {
            LlamaModel model = LlamaLoader.load(dir, manager, AttentionOptions.defaults(), DataType.FLOAT16);
            int vocab = model.getConfig().getVocabSize();
            float[] ours;
            try (NDManager m = manager.newSubManager()) {
                NDArray logits = model.forward(new ParameterStore(m, false), m.create(ids, new Shape(1, ids.length)),
                        null, false); // [1, T, vocab] fp32
                ours = logits.toFloatArray();
            }
            double hfErr = 0;
            double err = 0;
            for (int i = 0; i < hf32.length; i++) {
                hfErr = Math.max(hfErr, Math.abs(hf16[i] - hf32[i]));
                err = Math.max(err, Math.abs(ours[i] - hf32[i]));
            }
            double budget = 2 * hfErr;
            assertTrue(err <= budget, "max |ours - HF fp32| = " + err + " > budget " + budget
                    + " (2 x max |HF fp16 - HF fp32| = 2 x " + hfErr + ")");
            int checked = 0;
            for (int t = 0; t < ids.length; t++) {
                int top = argMax(hf32, t * vocab, vocab);
                float second = Float.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    if (v != top) {
                        second = Math.max(second, hf32[t * vocab + v]);
                    }
                }
                if (hf32[t * vocab + top] - second > budget) {
                    checked++;
                    int mine = argMax(ours, t * vocab, vocab);
                    assertTrue(mine == top, "position " + t + ": our top-1 " + mine + " vs HF fp32 " + top);
                }
            }
            System.out.printf("1B fp16 vs HF fp32: max abs %.4g (HF fp16: %.4g), top-1 checked at %d/%d positions%n",
                    err, hfErr, checked, ids.length);
        }
    }

    private static int argMax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[offset + i] > x[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    private static float[] floats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }
}
