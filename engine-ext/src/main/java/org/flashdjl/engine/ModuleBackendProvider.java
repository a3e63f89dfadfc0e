package org.flashdjl.engine;

/**
 * A built-in registry entry for a backend that lives in an optional module: available when its entry class is
 * on the class path and, for context parallelism, when a process group is given to the block that uses it.
 */
public abstract class ModuleBackendProvider implements BackendProvider {

    private final String name;
    private final BackendKind kind;
    private final String description;
    private final String entryClass;
    private final String requirement;

    /**
     * Creates an entry.
     *
     * @param name the backend name
     * @param kind the kind
     * @param description the report line
     * @param entryClass the class whose presence means the module is built in
     * @param requirement what a caller must supply beyond the module, or null
     */
    protected ModuleBackendProvider(String name, BackendKind kind, String description, String entryClass,
            String requirement) {
        this.name = name;
        this.kind = kind;
        this.description = description;
        this.entryClass = entryClass;
        this.requirement = requirement;
    }

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return name;
    }

    /** {@inheritDoc} */
    @Override
    public BackendKind getKind() {
        return kind;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return description;
    }

    /**
     * Returns whether the module's entry class is on the class path.
     *
     * @return true when the module is present
     */
    public boolean isModulePresent() {
        try {
            Class.forName(entryClass, false, ModuleBackendProvider.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        if (!isModulePresent()) {
            return "not in this build (" + entryClass + " is not on the class path)";
        }
        return requirement;
    }

    /** {@code paged}: attention over {@code PagedKVCache} pages and page tables. */
    public static final class Paged extends ModuleBackendProvider {
        /** Creates the entry. */
        public Paged() {
            super("paged", BackendKind.PAGED, "attention over a paged KV cache (page pool + page tables)",
                    "org.flashdjl.kvcache.paged.PagedKVCache", null);
        }
    }

    /** {@code ring}: ring attention over a context-parallel process group. */
    public static final class Ring extends ModuleBackendProvider {
        /** Creates the entry. */
        public Ring() {
            super("ring", BackendKind.CONTEXT_PARALLEL,
                    "context parallel: KV shards passed around the ring, states merged by LSE",
                    "org.flashdjl.ops.parallel.ContextParallelAttention",
                    "needs a process group (ContextParallelAttentionBlock.setContextParallelGroup)");
        }
    }

    /** {@code ulysses}: all-to-all head/sequence resharding over a context-parallel process group. */
    public static final class Ulysses extends ModuleBackendProvider {
        /** Creates the entry. */
        public Ulysses() {
            super("ulysses", BackendKind.CONTEXT_PARALLEL,
                    "context parallel: all-to-all from sequence shards to head shards and back",
                    "org.flashdjl.ops.parallel.ContextParallelAttention",
                    "needs a process group (ContextParallelAttentionBlock.setContextParallelGroup)");
        }
    }
}
