package org.flashdjl.engine;

import org.flashdjl.ops.attention.AttentionBackend;
import org.flashdjl.ops.attention.AttentionBackends;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * The FlashDJL backend registry: every attention backend by name ({@code math}, {@code online}, {@code flash},
 * {@code paged}, {@code ring}, {@code ulysses}, {@code auto}), whether it can run here and why not.
 *
 * <p>Entries come from two {@link ServiceLoader} lookups, like DJL's engines: the operator SPI
 * {@link AttentionBackend} (dense backends, through {@link AttentionBackends}) and this module's
 * {@link BackendProvider} (paged, context-parallel and third-party entries). Dropping a jar with either service
 * file on the class path adds a backend; when two providers claim a name, the higher {@link
 * BackendProvider#getRank() rank} wins.
 */
public final class Backends {

    private static final Logger logger = LoggerFactory.getLogger(Backends.class);

    private static volatile Map<String, BackendProvider> registry;

    private Backends() {}

    private static Map<String, BackendProvider> registry() {
        Map<String, BackendProvider> map = registry;
        if (map == null) {
            synchronized (Backends.class) {
                map = registry;
                if (map == null) {
                    map = load();
                    registry = map;
                }
            }
        }
        return map;
    }

    private static Map<String, BackendProvider> load() {
        Map<String, BackendProvider> map = new LinkedHashMap<>();
        for (AttentionBackend backend : AttentionBackends.all()) {
            map.put(backend.getName(), new DenseBackendProvider(backend));
        }
        for (BackendProvider provider : ServiceLoader.load(BackendProvider.class)) {
            BackendProvider old = map.get(provider.getName());
            if (old == null || provider.getRank() > old.getRank()) {
                if (old != null) {
                    logger.debug("backend '{}' from {} replaces {}", provider.getName(), provider.getClass(),
                            old.getClass());
                }
                map.put(provider.getName(), provider);
            }
        }
        map.put(AttentionBackends.AUTO, new AutoProvider());
        return Collections.unmodifiableMap(map);
    }

    /**
     * Returns every registered backend, {@code auto} last.
     *
     * @return the providers in registration order
     */
    public static List<BackendProvider> all() {
        return new ArrayList<>(registry().values());
    }

    /**
     * Returns every registered name, {@code auto} included.
     *
     * @return the names
     */
    public static List<String> names() {
        return new ArrayList<>(registry().keySet());
    }

    /**
     * Returns a backend by name.
     *
     * @param name the name
     * @return the provider
     * @throws IllegalArgumentException naming the registered backends
     */
    public static BackendProvider get(String name) {
        BackendProvider p = registry().get(name);
        if (p == null) {
            throw new IllegalArgumentException("unknown attention backend '" + name + "'; registered: " + names());
        }
        return p;
    }

    /**
     * Checks that a name can drive a dense attention call ({@code auto} or an available {@link
     * BackendKind#DENSE} backend) and returns it.
     *
     * @param name the name
     * @return the name
     * @throws IllegalArgumentException for unknown names and non-dense kinds, naming the dense backends
     * @throws UnsupportedOperationException when the backend cannot run in this process, saying why
     */
    public static String checkDense(String name) {
        BackendProvider p = get(name);
        if (p.getKind() == BackendKind.SELECTOR) {
            return name;
        }
        if (p.getKind() != BackendKind.DENSE) {
            throw new IllegalArgumentException("attention backend '" + name + "' is a " + p.getKind()
                    + " backend; dense attention takes one of " + denseNames());
        }
        String why = p.unavailableReason();
        if (why != null) {
            throw new UnsupportedOperationException("attention backend '" + name + "' is not available: " + why);
        }
        return name;
    }

    /**
     * Returns the names of the dense backends that can run here, and {@code auto}.
     *
     * @return the runnable dense names
     */
    public static List<String> denseNames() {
        List<String> out = new ArrayList<>();
        for (BackendProvider p : registry().values()) {
            if ((p.getKind() == BackendKind.DENSE && p.unavailableReason() == null)
                    || p.getKind() == BackendKind.SELECTOR) {
                out.add(p.getName());
            }
        }
        return out;
    }

    /** {@code auto}: flash for CUDA tensors when it can run the call, else online. */
    private static final class AutoProvider implements BackendProvider {

        @Override
        public String getName() {
            return AttentionBackends.AUTO;
        }

        @Override
        public BackendKind getKind() {
            return BackendKind.SELECTOR;
        }

        @Override
        public String getDescription() {
            return "picks flash for CUDA tensors when it can run the call, else online";
        }

        @Override
        public String unavailableReason() {
            return null;
        }
    }
}
