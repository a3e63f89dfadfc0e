package org.flashdjl.examples.generate;

/**
 * A request the {@link RollingBatchScheduler} did not run: it waited longer than the admission timeout for room in
 * the batch (sequences and KV pages), or the scheduler was closed. The message says why, with the numbers; a server
 * answers it with 503 (try again later), not as a client error.
 */
public class GenerationRejectedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message why the request was not admitted
     */
    public GenerationRejectedException(String message) {
        super(message);
    }
}
