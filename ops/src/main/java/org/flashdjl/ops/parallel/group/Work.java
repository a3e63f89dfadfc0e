package org.flashdjl.ops.parallel.group;

/**
 * A pending asynchronous operation ({@link ProcessGroup#batchIsendIrecv}, {@link ProcessGroup#isend},
 * {@link ProcessGroup#irecv}). Every wait is bounded by the group's timeout.
 */
public interface Work {

    /**
     * Waits until the operation completed; receive buffers hold their data afterwards.
     *
     * @throws ProcessGroupTimeoutException when it does not complete within the group's timeout, naming the op,
     *     the rank, the peer and the timeout
     * @throws ProcessGroupException when the peer failed or the group was aborted
     */
    void await();

    /**
     * Returns whether the operation already completed (never blocks).
     *
     * @return true when {@link #await()} would return at once
     */
    boolean isCompleted();

    /**
     * Returns a completed work, for operations that finish when they are posted.
     *
     * @return a work whose {@link #await()} returns at once
     */
    static Work completed() {
        return Completed.INSTANCE;
    }

    /** The completed work. */
    final class Completed implements Work {
        private static final Completed INSTANCE = new Completed();

        private Completed() {}

        /** {@inheritDoc} */
        @Override
        public void await() {}

        /** {@inheritDoc} */
        @Override
        public boolean isCompleted() {
            return true;
        }
    }
}
