package org.flashdjl.examples.safetensors;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint that cannot be loaded: a malformed or truncated safetensors file, an unknown dtype, a missing or
 * misshapen tensor, a missing config key. The message names the file and, when there is one, the tensor or key.
 */
public class CheckpointException extends IOException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String tensor;

    /**
     * Creates an exception.
     *
     * @param file the file at fault
     * @param tensor the tensor or config key at fault, or null
     * @param message what is wrong
     */
    public CheckpointException(Path file, String tensor, String message) {
        super(file + (tensor == null ? "" : ": tensor '" + tensor + "'") + ": " + message);
        this.file = file;
        this.tensor = tensor;
    }

    /**
     * Creates an exception with a cause.
     *
     * @param file the file at fault
     * @param tensor the tensor or config key at fault, or null
     * @param message what is wrong
     * @param cause the cause
     */
    public CheckpointException(Path file, String tensor, String message, Throwable cause) {
        this(file, tensor, message);
        initCause(cause);
    }

    /** @return the file at fault */
    public Path getFile() {
        return file;
    }

    /** @return the tensor (or config key) at fault, or null */
    public String getTensor() {
        return tensor;
    }
}
