package org.flashdjl.ops.parallel.group;

/**
 * A collective or point-to-point operation failed: a wait ran past the group's timeout, a peer disappeared, the
 * group was aborted, or ranks called collectives in different orders. The message names the operation, the rank,
 * the peer (where there is one) and the timeout.
 */
public class ProcessGroupException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what failed, naming the op, rank, peer and timeout
     */
    public ProcessGroupException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what failed, naming the op, rank, peer and timeout
     * @param cause the underlying failure
     */
    public ProcessGroupException(String message, Throwable cause) {
        super(message, cause);
    }
}
