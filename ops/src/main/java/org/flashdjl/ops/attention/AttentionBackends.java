package org.flashdjl.ops.attention;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * The registry of attention backends: the built-in {@code math} and {@code online}, plus every
 * {@link AttentionBackend} found through {@link ServiceLoader} (the CUDA {@code flash} backend registers itself
 * that way). {@code auto} picks {@code flash} for GPU tensors when it can run the problem, else {@code online}.
 */
public final class AttentionBackends {

    /** The name that selects a backend per call. */
    public static final String AUTO = "auto";

    private static final Map<String, AttentionBackend> BACKENDS = load();

    private AttentionBackends() {}

    private static Map<String, AttentionBackend> load() {
        Map<String, AttentionBackend> map = new LinkedHashMap<>();
        register(map, new MathBackend());
        register(map, new OnlineBackend());
        for (AttentionBackend backend : ServiceLoader.load(AttentionBackend.class)) {
            register(map, backend);
        }
        return Collections.unmodifiableMap(map);
    }

    private static void register(Map<String, AttentionBackend> map, AttentionBackend backend) {
        map.putIfAbsent(backend.getName(), backend);
    }

    /**
     * Returns every registered backend, available or not.
     *
     * @return the backends in registration order
     */
    public static List<AttentionBackend> all() {
        return new ArrayList<>(BACKENDS.values());
    }

    /**
     * Returns the names that {@link #get} accepts, {@code auto} included.
     *
     * @return the backend names
     */
    public static List<String> names() {
        List<String> names = new ArrayList<>(BACKENDS.keySet());
        names.add(AUTO);
        return names;
    }

    /**
     * Returns a backend by name (not {@code auto}).
     *
     * @param name the backend name
     * @return the backend
     * @throws IllegalArgumentException naming the known backends
     */
    public static AttentionBackend get(String name) {
        AttentionBackend backend = BACKENDS.get(name);
        if (backend == null) {
            throw new IllegalArgumentException("unknown attention backend '" + name + "'; known: " + names());
        }
        return backend;
    }

    /**
     * Resolves a name for a problem: {@code auto} picks {@code flash} for GPU inputs when it is available and
     * supports the problem, else {@code online}; any other name must be available and support the problem.
     *
     * @param name the backend name or {@code auto}
     * @param problem the problem
     * @return the backend to run
     * @throws IllegalArgumentException or {@link UnsupportedOperationException} saying why the named backend cannot run
     */
    public static AttentionBackend select(String name, AttentionProblem problem) {
        if (AUTO.equals(name)) {
            AttentionBackend flash = BACKENDS.get("flash");
            if (problem.getDevice().isGpu() && flash != null && flash.unavailableReason() == null
                    && flash.unsupportedReason(problem) == null) {
                return flash;
            }
            return BACKENDS.get("online");
        }
        AttentionBackend backend = get(name);
        String why = backend.unavailableReason();
        if (why != null) {
            throw new UnsupportedOperationException("attention backend '" + name + "' is not available: " + why);
        }
        why = backend.unsupportedReason(problem);
        if (why != null) {
            throw new UnsupportedOperationException("attention backend '" + name + "' cannot run this call: " + why);
        }
        return backend;
    }
}
