package org.flashdjl.ops.testing;

import java.util.concurrent.ThreadLocalRandom;

/**
 * Seeds of the randomized tests: fresh inputs every run, reproducible from the seed that every assertion message
 * prints ({@code mvn verify -Dflashdjl.seed=<seed>} replays it).
 */
public final class Seeds {

    /** The system property that replays a seed. */
    public static final String PROPERTY = "flashdjl.seed";

    private Seeds() {}

    /**
     * Returns the seed of one test: {@code -Dflashdjl.seed} when set, else a fresh random one.
     *
     * @return the seed; put it in the test's assertion messages
     */
    public static long next() {
        Long replay = Long.getLong(PROPERTY);
        return replay != null ? replay : ThreadLocalRandom.current().nextLong();
    }
}
