package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import org.flashdjl.examples.safetensors.CheckpointException;
import org.flashdjl.examples.safetensors.SafetensorsFile;
import org.flashdjl.examples.safetensors.TensorInfo;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Loads a Hugging Face checkpoint directory ({@code config.json} and one or more {@code *.safetensors}) into a
 * {@link LlamaModel}, checking everything before anything large is allocated:
 * <ol>
 *   <li>{@code config.json} ({@link LlamaConfig#read}: types, ranges, supported family and math);
 *   <li>every safetensors header ({@link SafetensorsFile#open}: offsets, byte counts, overlaps, dtypes), and no
 *       tensor in two files;
 *   <li>the layer count of the config against the layers the tensors hold, then every tensor the architecture
 *       needs present with its shape ({@link LlamaModel#expectedShapes(LlamaConfig)}), and no tensor the model
 *       would not use, except known-harmless ones ({@code *.rotary_emb.inv_freq}; {@code lm_head.weight} equal to
 *       the tied embeddings), which are logged;
 *   <li>only then the model is built and the tensors read, converted to the compute dtype in Java (F16, BF16,
 *       F32, F64 to float32 or float16), NaN / infinite weights refused.
 * </ol>
 * Every error is a {@link CheckpointException} that names the file and the tensor or config key. A failed load
 * leaves the manager as it was.
 *
 * <pre>{@code
 * try (NDManager manager = NDManager.newBaseManager()) {
 *     LlamaModel model = LlamaLoader.load(dir, manager, AttentionOptions.defaults(), DataType.FLOAT32);
 * }
 * }</pre>
 */
public final class LlamaLoader {

    private static final Logger logger = LoggerFactory.getLogger(LlamaLoader.class);

    private static final String LAYER_PREFIX = "model.layers.";

    private LlamaLoader() {}

    /**
     * Loads a checkpoint.
     *
     * @param dir the checkpoint directory
     * @param manager the manager that owns the weights
     * @param options attention backend, window and sinks
     * @param dataType the compute dtype ({@link DataType#FLOAT32} or {@link DataType#FLOAT16})
     * @return the model, every parameter set
     * @throws CheckpointException naming the file and tensor or key when the checkpoint is unusable
     * @throws IOException when a file cannot be read
     * @throws IllegalArgumentException for a dtype other than float32 / float16
     */
    public static LlamaModel load(Path dir, NDManager manager, AttentionOptions options, DataType dataType)
            throws IOException {
        checkDataType(dataType);
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir, null, Files.exists(dir) ? "is not a directory (give the checkpoint"
                    + " directory)" : "model directory not found");
        }
        Path configFile = dir.resolve("config.json");
        LlamaConfig config = LlamaConfig.read(configFile);
        List<Path> files = safetensorsFiles(dir);
        List<SafetensorsFile> open = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> where = new LinkedHashMap<>();
            for (Path f : files) {
                SafetensorsFile sf = SafetensorsFile.open(f);
                open.add(sf);
                for (String name : sf.getTensors().keySet()) {
                    SafetensorsFile other = where.put(name, sf);
                    if (other != null) {
                        throw new CheckpointException(f, name, "tensor also present in " + other.getPath());
                    }
                }
            }
            checkLayout(configFile, config, where);
            return read(config, options, where, manager, dataType, dir, files.size());
        } finally {
            for (SafetensorsFile sf : open) {
                sf.close();
            }
        }
    }

    /**
     * Checks a compute dtype.
     *
     * @param dataType the dtype
     * @throws IllegalArgumentException unless float32 or float16
     */
    public static void checkDataType(DataType dataType) {
        if (dataType != DataType.FLOAT32 && dataType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute dtype must be float32 or float16, got " + dataType
                    + (dataType == DataType.BFLOAT16 ? " (bf16 NDArrays abort DJL 0.36.0's PyTorch JNI; bf16"
                            + " checkpoints are converted on load)" : ""));
        }
    }

    // The checkpoint holds exactly the tensors the config implies (layer count first, so an absurd
    // num_hidden_layers is refused before anything is built for it).
    private static void checkLayout(Path configFile, LlamaConfig config, Map<String, SafetensorsFile> where)
            throws CheckpointException {
        int maxLayer = -1;
        String maxLayerTensor = null;
        for (String name : where.keySet()) {
            int layer = layerIndex(name);
            if (layer > maxLayer) {
                maxLayer = layer;
                maxLayerTensor = name;
            }
        }
        if (config.getNumLayers() > maxLayer + 1) {
            throw CheckpointException.forKey(configFile, "num_hidden_layers", "is " + config.getNumLayers()
                    + ", but the checkpoint holds " + (maxLayer < 0 ? "no layer tensors (model.layers.*)"
                            : "tensors of layers 0.." + maxLayer + " only (" + (maxLayer + 1) + " layers)"));
        }
        if (config.getNumLayers() < maxLayer + 1) {
            throw CheckpointException.forKey(configFile, "num_hidden_layers", "is " + config.getNumLayers()
                    + ", but the checkpoint holds layer " + maxLayer + " (" + maxLayerTensor + " in "
                    + where.get(maxLayerTensor).getPath() + ")");
        }
        Map<String, Shape> expected = LlamaModel.expectedShapes(config);
        for (Map.Entry<String, Shape> e : expected.entrySet()) {
            String name = e.getKey();
            SafetensorsFile sf = where.get(name);
            if (sf == null) {
                Path first = where.isEmpty() ? configFile : where.values().iterator().next().getPath();
                throw new CheckpointException(first, name, "required tensor is missing (expected shape "
                        + e.getValue() + " for " + config.getModelType() + "; searched " + distinctFiles(where)
                        + " file(s))");
            }
            TensorInfo info = sf.info(name);
            if (!info.getShape().equals(e.getValue())) {
                throw new CheckpointException(sf.getPath(), name, "shape mismatch: file has " + info.getShape()
                        + ", the config (" + configFile.getFileName() + ") implies " + e.getValue());
            }
        }
        List<String> harmless = new ArrayList<>();
        for (Map.Entry<String, SafetensorsFile> e : where.entrySet()) {
            String name = e.getKey();
            if (expected.containsKey(name)) {
                continue;
            }
            if (name.endsWith("rotary_emb.inv_freq")) {
                harmless.add(name); // older checkpoints saved the RoPE frequencies; recomputed from the config
                continue;
            }
            if (name.equals("lm_head.weight") && config.isTieWordEmbeddings()) {
                try {
                    if (e.getValue().sameData(name, where.get("model.embed_tokens.weight"),
                            "model.embed_tokens.weight")) {
                        harmless.add(name);
                        continue;
                    }
                } catch (IOException ex) {
                    throw new CheckpointException(e.getValue().getPath(), name, "cannot be read: " + ex.getMessage(),
                            ex);
                }
                throw new CheckpointException(e.getValue().getPath(), name, "tie_word_embeddings is true, but"
                        + " lm_head.weight differs from model.embed_tokens.weight (which one is meant is ambiguous)");
            }
            throw new CheckpointException(e.getValue().getPath(), name, "tensor is not used by this "
                    + config.getModelType() + " model (a checkpoint of another architecture, or a config whose"
                    + " model_type, tie_word_embeddings, attention_bias or mlp_bias does not match it)"
                    + unusedCount(where, expected));
        }
        if (!harmless.isEmpty()) {
            logger.info("{}: ignoring {} tensor(s) the model recomputes or shares: {}", configFile.getParent(),
                    harmless.size(), harmless);
        }
    }

    private static String unusedCount(Map<String, SafetensorsFile> where, Map<String, Shape> expected) {
        long n = where.keySet().stream().filter(k -> !expected.containsKey(k) && !k.endsWith("rotary_emb.inv_freq")
                && !k.equals("lm_head.weight")).count();
        return n > 1 ? "; " + (n - 1) + " more unused tensor(s)" : "";
    }

    private static long distinctFiles(Map<String, SafetensorsFile> where) {
        return where.values().stream().distinct().count();
    }

    // model.layers.<i>.* -> i; -1 for other names (and malformed indices, which then count as unused tensors).
    private static int layerIndex(String name) {
        if (!name.startsWith(LAYER_PREFIX)) {
            return -1;
        }
        int end = name.indexOf('.', LAYER_PREFIX.length());
        if (end < 0) {
            return -1;
        }
        try {
            return Integer.parseInt(name.substring(LAYER_PREFIX.length(), end));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static LlamaModel read(LlamaConfig config, AttentionOptions options, Map<String, SafetensorsFile> where,
            NDManager manager, DataType dataType, Path dir, int fileCount) throws IOException {
        LlamaModel model = new LlamaModel(config, options);
        List<LlamaModel.CheckpointParameter> params = model.checkpointParameters();
        List<NDArray> arrays = new ArrayList<>();
        try (NDManager staging = manager.newSubManager()) {
            for (LlamaModel.CheckpointParameter cp : params) {
                NDList parts = new NDList();
                for (String name : cp.tensors()) {
                    parts.add(where.get(name).load(staging, name, dataType));
                }
                // packed projections (qkv, gate/up): the checkpoint's tensors stacked by rows, pieces freed at once
                NDArray array = parts.size() == 1 ? parts.head() : NDArrays.concat(parts, 0);
                if (parts.size() > 1) {
                    parts.close();
                }
                array.setName(String.join("+", cp.tensors()));
                arrays.add(array);
            }
            // every tensor read: hand them to the caller's manager (a failure above leaves it untouched)
            int i = 0;
            for (LlamaModel.CheckpointParameter cp : params) {
                NDArray array = arrays.get(i++);
                array.attach(manager);
                cp.parameter().setArray(array);
            }
        }
        int tensors = params.stream().mapToInt(cp -> cp.tensors().size()).sum();
        logger.info("loaded {} from {} ({} tensors in {} file(s), {})", config, dir, tensors, fileCount,
                dataType);
        return model;
    }

    /**
     * Returns the safetensors files of a directory, sorted by name.
     *
     * @param dir the directory
     * @return the files
     * @throws IOException if there are none, or one is not a regular file
     */
    public static List<Path> safetensorsFiles(Path dir) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path p : ds) {
                if (!Files.isRegularFile(p)) {
                    throw new CheckpointException(p, null, Files.isDirectory(p) ? "is a directory, not a safetensors"
                            + " file" : "is not a regular file");
                }
                files.add(p);
            }
        }
        if (files.isEmpty()) {
            throw new CheckpointException(dir, null, "no *.safetensors file in the model directory");
        }
        Collections.sort(files);
        return files;
    }
}
