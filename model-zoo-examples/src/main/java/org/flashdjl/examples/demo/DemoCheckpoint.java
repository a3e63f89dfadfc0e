package org.flashdjl.examples.demo;

import ai.djl.ndarray.types.Shape;

import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.safetensors.SafetensorsWriter;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import com.google.gson.GsonBuilder;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

/**
 * Writes a small deterministic LLaMA checkpoint ({@code config.json} + {@code model.safetensors}, seeded
 * random weights, the {@link ByteTokenizer} vocabulary) so the demo runs offline and goes through the same
 * loader as a real checkpoint. The LM head favours printable ASCII so the demo's (meaningless) text is
 * readable. Same seed and config, same bytes, on every machine.
 */
public final class DemoCheckpoint {

    /** The default demo directory, under the project's build output. */
    public static final String DEFAULT_DIR = "target/demo-model";

    /** The seed of the demo weights. */
    public static final long SEED = 20240607L;

    private static final Logger logger = LoggerFactory.getLogger(DemoCheckpoint.class);
    private static final String STAMP = "flashdjl-demo-v3";

    private DemoCheckpoint() {}

    /** @return the demo architecture: hidden 128, 4 layers, 8 heads over 2 KV heads, byte vocabulary */
    public static LlamaConfig demoConfig() {
        return LlamaConfig.builder().setSizes(128, 344, 4, 8, 2, ByteTokenizer.VOCAB_SIZE).optRope(10000,
                org.flashdjl.engine.nn.RopeScaling.none()).optRmsNormEps(1e-5).optMaxPositions(4096)
                .optSpecialTokens(ByteTokenizer.BOS, ByteTokenizer.EOS).build();
    }

    /**
     * Returns the demo directory, writing the checkpoint first if it is missing or stale.
     *
     * @param dir the directory
     * @return the directory
     * @throws IOException if it cannot be written
     */
    public static Path ensure(Path dir) throws IOException {
        Path stamp = dir.resolve("demo.stamp");
        if (Files.isRegularFile(stamp) && Files.isRegularFile(dir.resolve("model.safetensors"))
                && Files.isRegularFile(dir.resolve("config.json"))
                && STAMP.equals(new String(Files.readAllBytes(stamp), StandardCharsets.UTF_8).trim())) {
            return dir;
        }
        logger.info("writing the demo checkpoint to {}", dir);
        write(dir, demoConfig(), SEED, SafeDType.F32);
        Files.write(stamp, STAMP.getBytes(StandardCharsets.UTF_8));
        return dir;
    }

    /**
     * Writes a seeded random checkpoint of any config (tests use tiny ones).
     *
     * @param dir the directory
     * @param config the architecture
     * @param seed the seed
     * @param dtype how tensors are stored (F32, F16 or BF16)
     * @throws IOException if it cannot be written
     */
    public static void write(Path dir, LlamaConfig config, long seed, SafeDType dtype) throws IOException {
        Files.createDirectories(dir);
        Random rnd = new Random(seed);
        SafetensorsWriter w = new SafetensorsWriter().addMetadata("format", "pt")
                .addMetadata("generator", "FlashDJL DemoCheckpoint seed=" + seed);
        for (Map.Entry<String, Shape> e : LlamaModel.expectedShapes(config).entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue().getShape();
            int n = (int) e.getValue().size();
            float[] data = new float[n];
            if (name.endsWith("norm.weight")) {
                double centre = config.isGemmaStyle() ? 0 : 1; // Gemma stores (scale - 1)
                for (int i = 0; i < n; i++) {
                    data[i] = (float) (centre + 0.1 * rnd.nextGaussian());
                }
            } else if (name.endsWith(".bias")) {
                for (int i = 0; i < n; i++) {
                    data[i] = (float) (0.02 * rnd.nextGaussian());
                }
            } else {
                long fanIn = shape[shape.length - 1];
                double std = name.contains("embed_tokens") ? 1.0 : 1.0 / Math.sqrt(fanIn);
                for (int i = 0; i < n; i++) {
                    data[i] = (float) (std * rnd.nextGaussian());
                }
                if (name.equals("lm_head.weight") && config.getVocabSize() == ByteTokenizer.VOCAB_SIZE) {
                    printableHead(data, (int) shape[1]);
                }
            }
            w.add(name, dtype, shape, data);
        }
        w.write(dir.resolve("model.safetensors"));
        Files.write(dir.resolve("config.json"), new GsonBuilder().setPrettyPrinting().create()
                .toJson(config.toJson()).getBytes(StandardCharsets.UTF_8));
    }

    // Rows of bytes other than letters, digits, punctuation and space get zero weights (logit 0), and
    // the rest are scaled up, so greedy decoding of random weights prints readable characters.
    private static void printableHead(float[] data, int hidden) {
        for (int id = 0; id < ByteTokenizer.VOCAB_SIZE; id++) {
            boolean printable = id >= 0x20 && id < 0x7f;
            for (int j = 0; j < hidden; j++) {
                data[id * hidden + j] = printable ? data[id * hidden + j] * 3 : 0f;
            }
        }
    }
}
