package org.flashdjl.ops.attention;

import org.flashdjl.ops.BackendRegistry;

import java.util.List;

/**
 * The registry of dense attention backends ({@link BackendRegistry}): the built-in {@code math} and
 * {@code online}, plus every {@link AttentionBackend} listed in a {@code META-INF/services} file (the CUDA
 * {@code flash} backend registers itself that way, and so can a third-party jar). {@code auto} picks the
 * highest-ranked backend that can run the call: {@code flash} for GPU tensors it supports, else {@code online}.
 */
public final class AttentionBackends {

    /** The name that selects a backend per call. */
    public static final String AUTO = BackendRegistry.AUTO;

    private static final BackendRegistry<AttentionProblem, AttentionBackend> REGISTRY = new BackendRegistry<>(
            "attention", AttentionBackend.class, List.of(new MathBackend(), new OnlineBackend()));

    private AttentionBackends() {}

    /**
     * Returns the registry itself.
     *
     * @return the dense attention registry
     */
    public static BackendRegistry<AttentionProblem, AttentionBackend> registry() {
        return REGISTRY;
    }

    /**
     * Returns every registered backend, available or not.
     *
     * @return the backends in registration order
     */
    public static List<AttentionBackend> all() {
        return REGISTRY.all();
    }

    /**
     * Returns the names that {@link #select} accepts, {@code auto} included.
     *
     * @return the backend names
     */
    public static List<String> names() {
        return REGISTRY.names();
    }

    /**
     * Returns a backend by name (not {@code auto}).
     *
     * @param name the backend name
     * @return the backend
     * @throws IllegalArgumentException naming the known backends
     */
    public static AttentionBackend get(String name) {
        return REGISTRY.get(name);
    }

    /**
     * Checks a name before any call ({@link BackendRegistry#check}): {@code auto} or an available backend.
     *
     * @param name the backend name
     * @return the name
     * @throws IllegalArgumentException for an unknown name, naming the known ones
     * @throws UnsupportedOperationException when the backend cannot run here, saying why
     */
    public static String check(String name) {
        return REGISTRY.check(name);
    }

    /**
     * Resolves a name for a problem ({@link BackendRegistry#select}).
     *
     * @param name the backend name or {@code auto}
     * @param problem the problem
     * @return the backend to run
     * @throws IllegalArgumentException for an unknown name
     * @throws UnsupportedOperationException saying why the named backend cannot run the call
     */
    public static AttentionBackend select(String name, AttentionProblem problem) {
        return REGISTRY.select(name, problem);
    }
}
