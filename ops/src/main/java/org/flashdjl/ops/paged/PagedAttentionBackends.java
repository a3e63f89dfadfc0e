package org.flashdjl.ops.paged;

import org.flashdjl.ops.BackendRegistry;

import java.util.List;

/**
 * The registry of paged attention backends ({@link BackendRegistry}, the same rules as the dense one): the
 * built-in {@code gather} ({@link GatherPagedAttentionBackend}) plus every {@link PagedAttentionBackend} listed
 * in a {@code META-INF/services} file. {@code auto} picks the highest-ranked backend that can run the plan:
 * {@code cuda} for GPU plans it supports, else {@code gather}.
 */
public final class PagedAttentionBackends {

    /** The name that selects a backend per plan. */
    public static final String AUTO = BackendRegistry.AUTO;

    /** The name a CUDA paged-attention backend registers under. */
    public static final String CUDA = "cuda";

    private static final BackendRegistry<PagedPlan, PagedAttentionBackend> REGISTRY = new BackendRegistry<>(
            "paged attention", PagedAttentionBackend.class, List.of(new GatherPagedAttentionBackend()));

    private PagedAttentionBackends() {}

    /**
     * Returns the registry itself.
     *
     * @return the paged attention registry
     */
    public static BackendRegistry<PagedPlan, PagedAttentionBackend> registry() {
        return REGISTRY;
    }

    /**
     * Returns every registered backend, available or not.
     *
     * @return the backends in registration order
     */
    public static List<PagedAttentionBackend> all() {
        return REGISTRY.all();
    }

    /**
     * Returns the names {@link #select} accepts, {@code auto} included.
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
    public static PagedAttentionBackend get(String name) {
        return REGISTRY.get(name);
    }

    /**
     * Resolves a name for a plan ({@link BackendRegistry#select}).
     *
     * @param name the backend name or {@code auto}
     * @param plan the plan
     * @return the backend to prepare and run the plan with
     * @throws IllegalArgumentException for an unknown name
     * @throws UnsupportedOperationException saying why the named backend cannot run the plan
     */
    public static PagedAttentionBackend select(String name, PagedPlan plan) {
        return REGISTRY.select(name, plan);
    }
}
