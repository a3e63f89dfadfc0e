package org.flashdjl.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.safetensors.CheckpointException;
import org.flashdjl.examples.tokenizer.ByteTokenizer;
import org.flashdjl.examples.tokenizer.HfTextTokenizer;
import org.flashdjl.examples.tokenizer.TextTokenizer;
import org.flashdjl.ops.attention.AttentionBackends;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * A model directory loaded with its tokenizer and manager: the common start of the CLI, the notebooks and the
 * serving translator. A directory with {@code tokenizer.json} uses it; the demo checkpoint (and any model whose
 * vocabulary is the byte vocabulary) uses {@link ByteTokenizer}.
 */
public final class LoadedModel implements AutoCloseable {

    private final Path dir;
    private final boolean demo;
    private final NDManager manager;
    private final LlamaModel model;
    private final TextTokenizer tokenizer;

    private LoadedModel(Path dir, boolean demo, NDManager manager, LlamaModel model, TextTokenizer tokenizer) {
        this.dir = dir;
        this.demo = demo;
        this.manager = manager;
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /**
     * Loads a model directory, or the demo checkpoint (written on first use) when {@code dir} is null, in the
     * device's default compute dtype ({@link #defaultDataType}).
     *
     * @param dir the checkpoint directory, or null for the demo
     * @param device the device
     * @param options attention backend, window, sinks
     * @return the loaded model; close it to free the weights
     * @throws IOException naming the file and tensor when the checkpoint is unusable
     */
    public static LoadedModel load(Path dir, Device device, AttentionOptions options) throws IOException {
        return load(dir, device, options, null);
    }

    /**
     * Loads a model directory, or the demo checkpoint (written on first use) when {@code dir} is null.
     *
     * @param dir the checkpoint directory, or null for the demo
     * @param device the device
     * @param options attention backend, window, sinks
     * @param dataType the compute dtype: {@link DataType#FLOAT16} or {@link DataType#FLOAT32}; null for the
     *     device's default ({@link #defaultDataType}). Weights are converted on load (bf16 and fp32 checkpoints
     *     to fp16, fp16 data kept as is); activations, weights and KV caches use it; logits are fp32.
     * @return the loaded model; close it to free the weights
     * @throws IOException naming the file and tensor when the checkpoint is unusable
     * @throws IllegalArgumentException for an unknown backend, a GPU the engine does not see, or a dtype other
     *     than float16 / float32
     */
    public static LoadedModel load(Path dir, Device device, AttentionOptions options, DataType dataType)
            throws IOException {
        DataType type = dataType == null ? defaultDataType(device) : dataType;
        LlamaLoader.checkDataType(type);
        AttentionBackends.check(options.getBackend());
        if (device.isGpu() && Engine.getInstance().getGpuCount() == 0) {
            throw new IllegalArgumentException("device " + device + " asked for, but the engine sees no GPU");
        }
        boolean demo = dir == null;
        Path d = demo ? DemoCheckpoint.ensure(defaultDemoDir()) : dir;
        NDManager manager = NDManager.newBaseManager(device);
        try {
            LlamaModel model = LlamaLoader.load(d, manager, options, type);
            TextTokenizer tokenizer = tokenizerFor(d, model.getConfig());
            return new LoadedModel(d, demo, manager, model, tokenizer);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * Returns the default compute dtype of a device: float16 on a GPU (the flash kernels' dtype), float32 on the
     * CPU.
     *
     * @param device the device
     * @return the dtype
     */
    public static DataType defaultDataType(Device device) {
        return device.isGpu() ? DataType.FLOAT16 : DataType.FLOAT32;
    }

    /**
     * Returns the tokenizer of a model directory.
     *
     * @param dir the directory
     * @param config its config
     * @return {@code tokenizer.json} through DJL's tokenizers, or the byte tokenizer for a byte vocabulary
     * @throws CheckpointException naming the file when there is no usable tokenizer
     * @throws IOException when the tokenizer cannot be read
     */
    public static TextTokenizer tokenizerFor(Path dir, LlamaConfig config) throws IOException {
        Path json = dir.resolve("tokenizer.json");
        if (Files.exists(json)) {
            return HfTextTokenizer.load(json, config.getBosTokenId(), config.getEosTokenIds());
        }
        if (config.getVocabSize() == ByteTokenizer.VOCAB_SIZE) {
            return new ByteTokenizer();
        }
        throw new CheckpointException(json, null, "not found, and vocab_size " + config.getVocabSize()
                + " is not the byte vocabulary (" + ByteTokenizer.VOCAB_SIZE + "); add the checkpoint's tokenizer.json");
    }

    /**
     * Returns the demo checkpoint directory: {@code $FLASHDJL_DEMO_DIR}, else {@code target/demo-model} under the
     * project root when run from it, else under the working directory.
     *
     * @return the directory
     */
    public static Path defaultDemoDir() {
        String env = System.getenv("FLASHDJL_DEMO_DIR");
        if (env != null && !env.isEmpty()) {
            return Paths.get(env);
        }
        String prop = System.getProperty("flashdjl.demo.dir");
        if (prop != null && !prop.isEmpty()) {
            return Paths.get(prop);
        }
        return Paths.get(DemoCheckpoint.DEFAULT_DIR);
    }

    /** @return the checkpoint directory */
    public Path getDir() {
        return dir;
    }

    /** @return whether this is the demo checkpoint */
    public boolean isDemo() {
        return demo;
    }

    /** @return the manager holding the weights (parent of generation sub-managers) */
    public NDManager getManager() {
        return manager;
    }

    /** @return the compute dtype of weights, activations and KV caches (logits are fp32) */
    public DataType getDataType() {
        return model.getDataType();
    }

    /** @return the model */
    public LlamaModel getModel() {
        return model;
    }

    /** @return the tokenizer */
    public TextTokenizer getTokenizer() {
        return tokenizer;
    }

    /** Frees the weights and the tokenizer. */
    @Override
    public void close() {
        tokenizer.close();
        manager.close();
    }
}
