package org.flashdjl.ops.parallel.group;

import ai.djl.ndarray.NDManager;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/** Runs one body per rank of a {@link LocalProcessGroup}, each on its own thread with its own NDManager. */
public final class Ranks {

    /**
     * A rank's body.
     *
     * @param <T> its result
     */
    public interface Body<T> {
        T run(ProcessGroup group, NDManager manager) throws Exception;
    }

    private Ranks() {}

    /**
     * Runs the body on every rank and returns the results by rank; a failing rank aborts the group so the others
     * stop at once, and the first failure is rethrown.
     */
    public static <T> List<T> run(int world, Duration timeout, Body<T> body) throws Exception {
        List<LocalProcessGroup> groups = LocalProcessGroup.create(world, timeout);
        ExecutorService pool = Executors.newFixedThreadPool(world);
        AtomicReference<Throwable> root = new AtomicReference<>();
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (LocalProcessGroup g : groups) {
                futures.add(pool.submit(() -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        return body.run(g, manager);
                    } catch (Throwable t) {
                        root.compareAndSet(null, t);
                        g.abort(t);
                        throw t;
                    } finally {
                        g.close();
                    }
                }));
            }
            List<T> results = new ArrayList<>();
            Exception first = null;
            for (Future<T> f : futures) {
                try {
                    results.add(f.get(timeout.toMillis() * 4 + 30_000, TimeUnit.MILLISECONDS));
                } catch (ExecutionException e) {
                    results.add(null);
                    if (first == null) {
                        first = e.getCause() instanceof Exception ? (Exception) e.getCause() : e;
                    }
                } catch (TimeoutException e) {
                    throw new AssertionError("a rank hung past the test's limit", e);
                }
            }
            if (first != null) {
                Throwable t = root.get();
                throw t instanceof Exception ? (Exception) t : first;
            }
            return results;
        } finally {
            pool.shutdownNow();
        }
    }

    public static <T> List<T> run(int world, Body<T> body) throws Exception {
        return run(world, Duration.ofSeconds(30), body);
    }
}
