package org.flashdjl.ops;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.stream.Collectors;

/**
 * The one registry of backends by name, shared by every kind of backend (dense attention, paged attention): the
 * built-ins plus every implementation of the SPI found through {@link ServiceLoader}, and the one rule that
 * resolves a name for a problem. {@value #AUTO} picks the highest-{@link Backend#getRank() ranked} backend that is
 * available and supports the problem; any other name must be registered, available and support it, else the
 * call fails saying why. Immutable once built; thread-safe.
 *
 * @param <P> what one call is described by
 * @param <B> the SPI
 */
public final class BackendRegistry<P, B extends Backend<P>> {

    /** The name that selects a backend per call. */
    public static final String AUTO = "auto";

    private static final Logger logger = LoggerFactory.getLogger(BackendRegistry.class);

    private final String kind;
    private final Map<String, B> byName; // registration order
    private final List<B> byRank; // auto's order: rank descending, registration order on ties

    /**
     * Builds a registry: the built-ins first, then every provider of {@code spi} on the class path.
     *
     * @param kind what the backends compute, for messages (e.g. {@code "attention"})
     * @param spi the service interface
     * @param builtIns the built-in backends, the fallback of {@code auto} among them
     */
    public BackendRegistry(String kind, Class<B> spi, List<B> builtIns) {
        this.kind = kind;
        Map<String, B> map = new LinkedHashMap<>();
        for (B b : builtIns) {
            register(map, b);
        }
        Iterator<B> it = ServiceLoader.load(spi).iterator();
        while (true) {
            B b;
            try {
                if (!it.hasNext()) {
                    break;
                }
                b = it.next();
            } catch (ServiceConfigurationError e) {
                logger.warn("skipping a {} backend that cannot be loaded: {}", kind, e.getMessage());
                continue;
            }
            register(map, b);
        }
        this.byName = Collections.unmodifiableMap(map);
        List<B> ranked = new ArrayList<>(map.values());
        ranked.sort(Comparator.comparingInt((B b) -> -b.getRank())); // stable: registration order on ties
        this.byRank = Collections.unmodifiableList(ranked);
    }

    private void register(Map<String, B> map, B backend) {
        String name = backend.getName();
        if (AUTO.equals(name)) {
            logger.warn("ignoring {} backend {}: '{}' is reserved", kind, backend.getClass().getName(), AUTO);
            return;
        }
        B old = map.get(name);
        if (old == null || backend.getRank() > old.getRank()) {
            if (old != null) {
                logger.debug("{} backend '{}': {} (rank {}) replaces {} (rank {})", kind, name,
                        backend.getClass().getName(), backend.getRank(), old.getClass().getName(), old.getRank());
            }
            map.put(name, backend);
        }
    }

    /**
     * Returns what the backends compute, as messages name it.
     *
     * @return e.g. {@code "attention"} or {@code "paged attention"}
     */
    public String getKind() {
        return kind;
    }

    /**
     * Returns every registered backend, available or not.
     *
     * @return the backends in registration order (built-ins first)
     */
    public List<B> all() {
        return new ArrayList<>(byName.values());
    }

    /**
     * Returns the names that {@link #select} accepts: every registered backend, then {@value #AUTO}.
     *
     * @return the names
     */
    public List<String> names() {
        List<String> names = new ArrayList<>(byName.keySet());
        names.add(AUTO);
        return names;
    }

    /**
     * Returns a backend by name (not {@value #AUTO}).
     *
     * @param name the name
     * @return the backend
     * @throws IllegalArgumentException naming the registered backends
     */
    public B get(String name) {
        B backend = byName.get(name);
        if (backend == null) {
            throw new IllegalArgumentException("unknown " + kind + " backend '" + name + "'; known: " + names());
        }
        return backend;
    }

    /**
     * Checks a name before any call: {@value #AUTO} or a registered backend that can run in this process.
     *
     * @param name the name
     * @return the name
     * @throws IllegalArgumentException for an unknown name, naming the known ones
     * @throws UnsupportedOperationException when the backend cannot run here, saying why
     */
    public String check(String name) {
        if (AUTO.equals(name)) {
            return name;
        }
        String why = get(name).unavailableReason();
        if (why != null) {
            throw new UnsupportedOperationException(kind + " backend '" + name + "' is not available: " + why);
        }
        return name;
    }

    /**
     * Resolves a name for a problem.
     *
     * @param name a registered name or {@value #AUTO}
     * @param problem the problem
     * @return the backend to run
     * @throws IllegalArgumentException for an unknown name
     * @throws UnsupportedOperationException saying why the named backend (or, for {@value #AUTO}, every
     *     backend) cannot run the problem
     */
    public B select(String name, P problem) {
        if (AUTO.equals(name)) {
            for (B b : byRank) {
                if (b.unavailableReason() == null && b.unsupportedReason(problem) == null) {
                    return b;
                }
            }
            throw new UnsupportedOperationException("no " + kind + " backend can run this call: " + byName.keySet());
        }
        B backend = get(name);
        String why = backend.unavailableReason();
        if (why != null) {
            throw new UnsupportedOperationException(kind + " backend '" + name + "' is not available: " + why);
        }
        why = backend.unsupportedReason(problem);
        if (why != null) {
            throw new UnsupportedOperationException(kind + " backend '" + name + "' cannot run this call: " + why);
        }
        return backend;
    }

    /**
     * Describes {@value #AUTO} for the capability report.
     *
     * @return e.g. "the first of flash, online, math that is available and supports the call"
     */
    public String describeAuto() {
        return "per call, the first of " + byRank.stream().map(Backend::getName).collect(Collectors.joining(", "))
                + " that is available and supports it";
    }
}
