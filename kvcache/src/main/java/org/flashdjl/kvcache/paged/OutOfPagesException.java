package org.flashdjl.kvcache.paged;

/**
 * Thrown when a {@link PagedKvCache} reservation needs more free pages than the pool has. The cache is unchanged
 * (no page allocated, no sequence grown), so a scheduler can catch it, preempt or free a sequence and retry.
 */
public class OutOfPagesException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /** Pages the rejected reservation needed. */
    private final int needed;
    /** Pages that were free. */
    private final int free;

    /**
     * Creates the exception.
     *
     * @param message the message (says how many pages were needed and free)
     * @param needed pages the reservation needed
     * @param free pages that were free
     */
    public OutOfPagesException(String message, int needed, int free) {
        super(message);
        this.needed = needed;
        this.free = free;
    }

    /**
     * Returns how many pages the rejected reservation needed.
     *
     * @return the needed page count
     */
    public int getNeeded() {
        return needed;
    }

    /**
     * Returns how many pages were free.
     *
     * @return the free page count
     */
    public int getFree() {
        return free;
    }
}
