package org.flashdjl.ops.parallel.group;

import java.time.Duration;

/** A {@link ProcessGroup} wait ran past the group's timeout: the peer is slow, hung or gone. */
public class ProcessGroupTimeoutException extends ProcessGroupException {

    private static final long serialVersionUID = 1L;

    private final transient Duration timeout;

    /**
     * Creates the exception.
     *
     * @param message what timed out, naming the op, rank, peer and timeout
     * @param timeout the timeout that expired
     */
    public ProcessGroupTimeoutException(String message, Duration timeout) {
        super(message);
        this.timeout = timeout;
    }

    /**
     * Returns the timeout that expired.
     *
     * @return the timeout
     */
    public Duration getTimeout() {
        return timeout;
    }
}
