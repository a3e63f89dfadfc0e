package org.flashdjl.ops.paged;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * The registry of paged attention backends: the built-in {@code gather} ({@link GatherPagedAttentionBackend}) plus
 * every {@link PagedAttentionBackend} found through {@link ServiceLoader}. {@code auto} picks {@code cuda} for a
 * plan on a GPU when that backend is registered, available and supports the plan, else {@code gather}, the same
 * rule as {@link org.flashdjl.ops.attention.AttentionBackends}.
 */
public final class PagedAttentionBackends {

    /** The name that selects a backend per plan. */
    public static final String AUTO = "auto";

    /** The name a CUDA paged-attention backend registers under. */
    public static final String CUDA = "cuda";

    private static final Map<String, PagedAttentionBackend> BACKENDS = load();

    private PagedAttentionBackends() {}

    private static Map<String, PagedAttentionBackend> load() {
        Map<String, PagedAttentionBackend> map = new LinkedHashMap<>();
        GatherPagedAttentionBackend gather = new GatherPagedAttentionBackend();
        map.put(gather.getName(), gather);
        for (PagedAttentionBackend backend : ServiceLoader.load(PagedAttentionBackend.class)) {
            map.putIfAbsent(backend.getName(), backend);
        }
        return Collections.unmodifiableMap(map);
    }

    /**
     * Returns every registered backend, available or not.
     *
     * @return the backends in registration order
     */
    public static List<PagedAttentionBackend> all() {
        return new ArrayList<>(BACKENDS.values());
    }

    /**
     * Returns the names {@link #get} accepts, {@code auto} included.
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
    public static PagedAttentionBackend get(String name) {
        PagedAttentionBackend backend = BACKENDS.get(name);
        if (backend == null) {
            throw new IllegalArgumentException("unknown paged attention backend '" + name + "'; known: " + names());
        }
        return backend;
    }

    /**
     * Resolves a name for a plan: {@code auto} picks {@code cuda} for GPU plans it supports, else {@code gather};
     * any other name must be available and support the plan.
     *
     * @param name the backend name or {@code auto}
     * @param plan the plan
     * @return the backend to prepare and run the plan with
     * @throws UnsupportedOperationException saying why the named backend cannot run the plan
     */
    public static PagedAttentionBackend select(String name, PagedPlan plan) {
        if (AUTO.equals(name)) {
            PagedAttentionBackend cuda = BACKENDS.get(CUDA);
            if (plan.getDevice().isGpu() && cuda != null && cuda.unavailableReason() == null
                    && cuda.unsupportedReason(plan) == null) {
                return cuda;
            }
            return BACKENDS.get(GatherPagedAttentionBackend.NAME);
        }
        PagedAttentionBackend backend = get(name);
        String why = backend.unavailableReason();
        if (why != null) {
            throw new UnsupportedOperationException("paged attention backend '" + name + "' is not available: "
                    + why);
        }
        why = backend.unsupportedReason(plan);
        if (why != null) {
            throw new UnsupportedOperationException("paged attention backend '" + name + "' cannot run this plan: "
                    + why);
        }
        return backend;
    }
}
