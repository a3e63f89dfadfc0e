package org.flashdjl.ops.testing;

import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Seeds of the randomized tests: fresh inputs every run, reproducible from the seed. A test draws its seeds with
 * {@link #next()}; with {@code @ExtendWith(Seeds.class)} on the class, a failing test's message ends with the
 * seeds it drew and how to replay them ({@code mvn verify -Dflashdjl.seed=<seed>}: every draw returns it).
 */
public final class Seeds implements BeforeEachCallback, TestExecutionExceptionHandler {

    /** The system property that replays a seed. */
    public static final String PROPERTY = "flashdjl.seed";

    private static final ThreadLocal<List<Long>> DRAWN = ThreadLocal.withInitial(ArrayList::new);

    /** Creates the extension (JUnit does). */
    public Seeds() {}

    /**
     * Returns a seed for the current test: {@code -Dflashdjl.seed} when set, else a fresh random one.
     *
     * @return the seed
     */
    public static long next() {
        Long replay = Long.getLong(PROPERTY);
        long seed = replay != null ? replay : ThreadLocalRandom.current().nextLong();
        DRAWN.get().add(seed);
        return seed;
    }

    /** {@inheritDoc} */
    @Override
    public void beforeEach(ExtensionContext context) {
        DRAWN.get().clear();
    }

    /** {@inheritDoc} */
    @Override
    public void handleTestExecutionException(ExtensionContext context, Throwable failure) throws Throwable {
        List<Long> seeds = DRAWN.get();
        if (seeds.isEmpty()) {
            throw failure;
        }
        String note = " [random seed(s) of this test: " + seeds + "; replay: -D" + PROPERTY + "=" + seeds.get(0)
                + "]";
        if (failure instanceof AssertionError) {
            AssertionError withSeed = new AssertionError(failure.getMessage() + note, failure);
            withSeed.setStackTrace(failure.getStackTrace());
            throw withSeed;
        }
        failure.addSuppressed(new AssertionError("seed" + note));
        throw failure;
    }
}
