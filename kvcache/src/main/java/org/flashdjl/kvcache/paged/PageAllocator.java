package org.flashdjl.kvcache.paged;

import java.util.ArrayDeque;

/**
 * The page allocator of a {@link PagedKvCache}: a FIFO free list and a reference count per page. A page is free
 * iff its count is 0. Not thread-safe on its own (the cache synchronizes).
 */
final class PageAllocator {

    private final int[] refCounts; // [numPages]
    private final ArrayDeque<Integer> free;

    PageAllocator(int numPages) {
        this.refCounts = new int[numPages];
        this.free = new ArrayDeque<>(numPages);
        for (int p = 0; p < numPages; p++) {
            free.addLast(p);
        }
    }

    /** Takes a free page (count 0 -> 1); the caller checked {@link #freeCount()} first. */
    int allocate() {
        Integer page = free.pollFirst();
        if (page == null) {
            throw new IllegalStateException("internal error: allocate() with no free page");
        }
        refCounts[page] = 1;
        return page;
    }

    /** Adds a reference to a used page (fork). */
    void retain(int page) {
        if (refCounts[page] <= 0) {
            throw new IllegalStateException("internal error: retain of free page " + page);
        }
        refCounts[page]++;
    }

    /**
     * Drops a reference.
     *
     * @return true when the page became free
     */
    boolean release(int page) {
        if (refCounts[page] <= 0) {
            throw new IllegalStateException("internal error: release of free page " + page);
        }
        if (--refCounts[page] == 0) {
            free.addLast(page);
            return true;
        }
        return false;
    }

    int refCount(int page) {
        return refCounts[page];
    }

    int freeCount() {
        return free.size();
    }

    int numPages() {
        return refCounts.length;
    }
}
