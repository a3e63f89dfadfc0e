package org.flashdjl.examples.safetensors;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint that cannot be loaded: a malformed or truncated safetensors file, an unknown dtype, a missing,
 * unused or misshapen tensor, a missing or invalid config key, an unusable tokenizer file. The message names the
 * file and, when there is one, the tensor or the config key.
 */
public class CheckpointException extends IOException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String tensor;
    private final String key;

    private CheckpointException(Path file, String tensor, String key, String message) {
        super(file + (tensor != null ? ": tensor '" + tensor + "'" : "") + (key != null ? ": key '" + key + "'" : "")
                + ": " + message);
        this.file = file;
        this.tensor = tensor;
        this.key = key;
    }

    /**
     * Creates an exception about a file, or a tensor in it.
     *
     * @param file the file at fault
     * @param tensor the tensor at fault, or null
     * @param message what is wrong
     */
    public CheckpointException(Path file, String tensor, String message) {
        this(file, tensor, null, message);
    }

    /**
     * Creates an exception about a file, or a tensor in it, with a cause.
     *
     * @param file the file at fault
     * @param tensor the tensor at fault, or null
     * @param message what is wrong
     * @param cause the cause
     */
    public CheckpointException(Path file, String tensor, String message, Throwable cause) {
        this(file, tensor, null, message);
        initCause(cause);
    }

    /**
     * Creates an exception about a key of a JSON file ({@code config.json}, {@code tokenizer.json}).
     *
     * @param file the file at fault
     * @param key the key at fault (a dotted path for nested keys, e.g. {@code rope_parameters.factor})
     * @param message what is wrong and what is allowed
     * @return the exception
     */
    public static CheckpointException forKey(Path file, String key, String message) {
        return new CheckpointException(file, null, key, message);
    }

    /** @return the file at fault */
    public Path getFile() {
        return file;
    }

    /** @return the tensor at fault, or null */
    public String getTensor() {
        return tensor;
    }

    /** @return the config key at fault, or null */
    public String getKey() {
        return key;
    }
}
