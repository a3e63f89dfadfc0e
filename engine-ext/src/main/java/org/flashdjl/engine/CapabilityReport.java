package org.flashdjl.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;


import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What this process can run: the DJL engine and its devices, and each attention backend with the reason it is
 * unavailable, if it is.
 */
public final class CapabilityReport {

    /** One backend's line of the report. */
    public static final class BackendStatus {
        private final String name;
        private final String unavailableReason;
        private final BackendKind kind;
        private final String description;

        BackendStatus(String name, String unavailableReason) {
            this(name, unavailableReason, BackendKind.DENSE, "");
        }

        BackendStatus(String name, String unavailableReason, BackendKind kind, String description) {
            this.name = name;
            this.unavailableReason = unavailableReason;
            this.kind = kind;
            this.description = description;
        }

        /** @return what kind of attention the backend computes */
        public BackendKind getKind() {
            return kind;
        }

        /** @return the one-line description */
        public String getDescription() {
            return description;
        }

        /** @return the backend name */
        public String getName() {
            return name;
        }

        /** @return whether the backend can run in this process */
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

    private CapabilityReport(String engineName, String engineVersion, Device defaultDevice, int gpuCount,
            List<BackendStatus> backends) {
        this.engineName = engineName;
        this.engineVersion = engineVersion;
        this.defaultDevice = defaultDevice;
        this.gpuCount = gpuCount;
        this.backends = Collections.unmodifiableList(backends);
    }

    /**
     * Probes the default DJL engine and every registered attention backend.
     *
     * @return the report
     */
    public static CapabilityReport probe() {
        Engine engine = Engine.getInstance();
        List<BackendStatus> list = new ArrayList<>();
        for (BackendProvider backend : Backends.all()) {
            String reason;
            try {
                reason = backend.unavailableReason();
            } catch (RuntimeException | LinkageError e) {
                reason = "probe failed: " + e;
            }
            list.add(new BackendStatus(backend.getName(), reason, backend.getKind(), backend.getDescription()));
        }
        return new CapabilityReport(engine.getEngineName(), engine.getVersion(), engine.defaultDevice(),
                engine.getGpuCount(), list);
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

    /** @return each registered backend's status, {@code auto} included (kind {@link BackendKind#SELECTOR}) */
    public List<BackendStatus> getAllBackends() {
        return backends;
    }

    /** @return the status of each registered backend that computes dense attention (what a sample can run) */
    public List<BackendStatus> getBackends() {
        List<BackendStatus> dense = new ArrayList<>();
        for (BackendStatus b : backends) {
            if (b.getKind() == BackendKind.DENSE) {
                dense.add(b);
            }
        }
        return dense;
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
        for (BackendStatus b : backends) {
            if (b.getKind() == BackendKind.SELECTOR) {
                sb.append(String.format("  %-8s %s%n", b.getName(), b.getDescription()));
                continue;
            }
            sb.append(String.format("  %-8s %-18s %s%n", b.getName(), kindLabel(b.getKind()),
                    b.isAvailable() ? "available" : "not available: " + b.getUnavailableReason()));
        }
        return sb.toString();
    }

    private static String kindLabel(BackendKind kind) {
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
