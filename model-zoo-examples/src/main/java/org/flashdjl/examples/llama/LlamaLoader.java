package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
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
 * {@link LlamaModel}. Every file header is validated first; then every tensor the model needs must be present
 * exactly once with the expected shape ({@code lm_head.weight} may be absent when the embeddings are tied); F16
 * and BF16 data are converted in Java before any NDArray exists. Errors are {@link CheckpointException}s that
 * name the file and the tensor or config key.
 *
 * <pre>{@code
 * try (NDManager manager = NDManager.newBaseManager()) {
 *     LlamaModel model = LlamaLoader.load(dir, manager, AttentionOptions.defaults(), DataType.FLOAT32);
 * }
 * }</pre>
 */
public final class LlamaLoader {

    private static final Logger logger = LoggerFactory.getLogger(LlamaLoader.class);

    private LlamaLoader() {}

    /**
     * Loads a checkpoint.
     *
     * @param dir the checkpoint directory
     * @param manager the manager that owns the weights
     * @param options attention backend, window and sinks
     * @param dataType the compute dtype ({@link DataType#FLOAT32} or {@link DataType#FLOAT16})
     * @return the model, every parameter set
     * @throws IOException naming the file and tensor when the checkpoint is unusable
     */
    public static LlamaModel load(Path dir, NDManager manager, AttentionOptions options, DataType dataType)
            throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir, null, "model directory not found");
        }
        LlamaConfig config = LlamaConfig.read(dir.resolve("config.json"));
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
            LlamaModel model = new LlamaModel(config, options);
            Map<String, Parameter> params = model.parametersByCheckpointName();
            Map<String, Shape> shapes = model.expectedShapes();
            // Validate every header entry before reading any data.
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                String name = e.getKey();
                SafetensorsFile sf = where.get(name);
                if (sf == null) {
                    throw new CheckpointException(files.get(0), name, "required tensor is missing (expected shape "
                            + shapes.get(name) + "; searched " + files.size() + " file(s) in " + dir + ")");
                }
                TensorInfo info = sf.info(name);
                if (!info.getShape().equals(shapes.get(name))) {
                    throw new CheckpointException(sf.getPath(), name, "shape mismatch: file has " + info.getShape()
                            + ", the config (" + dir.resolve("config.json").getFileName() + ") implies "
                            + shapes.get(name));
                }
            }
            if (config.isTieWordEmbeddings() && where.containsKey("lm_head.weight")) {
                logger.debug("{}: tied embeddings; ignoring lm_head.weight", dir);
            }
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                String name = e.getKey();
                SafetensorsFile sf = where.get(name);
                NDArray array = sf.load(manager, name, dataType);
                array.setName(name);
                e.getValue().setArray(array);
            }
            for (String name : where.keySet()) {
                if (!params.containsKey(name) && !name.equals("lm_head.weight")) {
                    logger.debug("{}: unused tensor {}", where.get(name).getPath(), name);
                }
            }
            logger.info("loaded {} from {} ({} tensors in {} file(s))", config, dir, params.size(), files.size());
            return model;
        } finally {
            for (SafetensorsFile sf : open) {
                sf.close();
            }
        }
    }

    /**
     * Returns the safetensors files of a directory, sorted by name.
     *
     * @param dir the directory
     * @return the files
     * @throws IOException if there are none
     */
    public static List<Path> safetensorsFiles(Path dir) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path p : ds) {
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
