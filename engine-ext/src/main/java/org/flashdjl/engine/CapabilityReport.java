package org.flashdjl.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;

import org.flashdjl.ops.Backend;
import org.flashdjl.ops.BackendRegistry;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.paged.PagedAttentionBackends;
import org.flashdjl.ops.parallel.ContextParallelAttention;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What this process can run: the DJL engine and its devices, every attention backend of the ops registries
 * ({@link AttentionBackends dense}, {@link PagedAttentionBackends paged}; built-in or dropped in as a jar) with
 * its description and the reason it is unavailable, if it is, and the context-parallel methods. Built from the
 * registries themselves, so what it lists is exactly what a call can select.
 */
public final class CapabilityReport {

    /** The requirement of every context-parallel method. */
    static final String NEEDS_GROUP = "needs a process group (ContextParallelAttentionBlock.setContextParallelGroup)";

    /** One line of the report. */
    public static final class BackendStatus {
        private final String name;
        private final BackendKind kind;
        private final String description;
        private final String unavailableReason;

        BackendStatus(String name, BackendKind kind, String description, String unavailableReason) {
            this.name = name;
            this.kind = kind;
            this.description = description;
            this.unavailableReason = unavailableReason;
        }

        /** @return the name that selects it */
        public String getName() {
            return name;
        }

        /** @return what kind of attention it computes */
        public BackendKind getKind() {
            return kind;
        }

        /** @return the one-line description */
        public String getDescription() {
            return description;
        }

        /** @return whether it can run in this process (context-parallel methods: given a process group) */
        public boolean isAvailable() {
            return unavailableReason == null;
        }

        /** @return why it cannot run, or null */
        public String getUnavailableReason() {
            return unavailableReason;
        }
    }

    private final String engineName;
    private final String engineVersion;
    private final Device defaultDevice;
    private final int gpuCount;
    private final List<BackendStatus> backends;
    private final String denseAuto;
    private final String pagedAuto;

    private CapabilityReport(Engine engine, List<BackendStatus> backends) {
        this.engineName = engine.getEngineName();
        this.engineVersion = engine.getVersion();
        this.defaultDevice = engine.defaultDevice();
        this.gpuCount = engine.getGpuCount();
        this.backends = Collections.unmodifiableList(backends);
        this.denseAuto = AttentionBackends.registry().describeAuto();
        this.pagedAuto = PagedAttentionBackends.registry().describeAuto();
    }

    /**
     * Probes the default DJL engine and every registered backend.
     *
     * @return the report
     */
    public static CapabilityReport probe() {
        List<BackendStatus> list = new ArrayList<>();
        add(list, AttentionBackends.registry(), BackendKind.DENSE);
        add(list, PagedAttentionBackends.registry(), BackendKind.PAGED);
        for (ContextParallelAttention.Method m : ContextParallelAttention.Method.values()) {
            list.add(new BackendStatus(m.toString(), BackendKind.CONTEXT_PARALLEL, m.getDescription(), NEEDS_GROUP));
        }
        return new CapabilityReport(Engine.getInstance(), list);
    }

    private static void add(List<BackendStatus> out, BackendRegistry<?, ?> registry, BackendKind kind) {
        for (Backend<?> b : registry.all()) {
            String reason;
            try {
                reason = b.unavailableReason();
            } catch (RuntimeException | LinkageError e) {
                reason = "probe failed: " + e;
            }
            out.add(new BackendStatus(b.getName(), kind, b.getDescription(), reason));
        }
    }

    /** @return the DJL engine name */
    public String getEngineName() {
        return engineName;
    }

    /** @return the engine (native library) version */
    public String getEngineVersion() {
        return engineVersion;
    }

    /** @return the engine's default device */
    public Device getDefaultDevice() {
        return defaultDevice;
    }

    /** @return the number of GPUs the engine sees */
    public int getGpuCount() {
        return gpuCount;
    }

    /** @return every line: the dense and paged backends, then the context-parallel methods */
    public List<BackendStatus> getAllBackends() {
        return backends;
    }

    /** @return the dense attention backends (what a dense sample can run by name) */
    public List<BackendStatus> getBackends() {
        return getBackends(BackendKind.DENSE);
    }

    /**
     * Returns the lines of one kind.
     *
     * @param kind the kind
     * @return its lines, in registration order
     */
    public List<BackendStatus> getBackends(BackendKind kind) {
        List<BackendStatus> out = new ArrayList<>();
        for (BackendStatus b : backends) {
            if (b.getKind() == kind) {
                out.add(b);
            }
        }
        return out;
    }

    /**
     * Renders the report as text lines.
     *
     * @return a human-readable report
     */
    public String format() {
        StringBuilder sb = new StringBuilder();
        sb.append("engine   : ").append(engineName).append(' ').append(engineVersion).append('\n');
        sb.append("device   : ").append(defaultDevice).append(" (GPUs visible to the engine: ").append(gpuCount)
                .append(")\n");
        sb.append("backends :\n");
        for (BackendKind kind : BackendKind.values()) {
            for (BackendStatus b : getBackends(kind)) {
                sb.append(String.format("  %-8s %-18s %-13s %s%n", b.getName(), label(kind),
                        b.isAvailable() ? "available" : "not available", b.getDescription()));
                if (!b.isAvailable()) {
                    sb.append(String.format("  %-8s %-18s   (%s)%n", "", "", b.getUnavailableReason()));
                }
            }
            if (kind != BackendKind.CONTEXT_PARALLEL) {
                sb.append(String.format("  %-8s %-18s %-13s %s%n", BackendRegistry.AUTO, label(kind), "",
                        kind == BackendKind.DENSE ? denseAuto : pagedAuto));
            }
        }
        return sb.toString();
    }

    private static String label(BackendKind kind) {
        switch (kind) {
            case PAGED:
                return "[paged]";
            case CONTEXT_PARALLEL:
                return "[context-parallel]";
            default:
                return "[dense]";
        }
    }
}
