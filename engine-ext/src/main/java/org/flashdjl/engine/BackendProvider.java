package org.flashdjl.engine;

/**
 * The service-provider interface of the FlashDJL backend registry, in the manner of DJL's
 * {@code ai.djl.engine.EngineProvider}: a jar registers backends by listing implementations in
 * {@code META-INF/services/org.flashdjl.engine.BackendProvider}; {@link Backends} finds them with
 * {@link java.util.ServiceLoader} and reports them in the {@link CapabilityReport}.
 *
 * <p>Dense attention backends are also found through the operator-level SPI
 * {@code org.flashdjl.ops.attention.AttentionBackend}: every one of those appears here automatically as a
 * {@link BackendKind#DENSE} provider, so a third-party dense kernel only needs that one service file.
 */
public interface BackendProvider {

    /**
     * Returns the backend name used to select it, e.g. {@code "paged"}.
     *
     * @return the name
     */
    String getName();

    /**
     * Returns what kind of attention the backend computes.
     *
     * @return the kind
     */
    BackendKind getKind();

    /**
     * Returns a one-line description for the capability report.
     *
     * @return the description
     */
    String getDescription();

    /**
     * Returns why the backend cannot run in this process (missing module, no GPU, needs a process group), or
     * null when it can.
     *
     * @return the reason or null
     */
    String unavailableReason();

    /**
     * Returns the rank used when two providers register the same name: the higher rank wins (built-ins use 0).
     *
     * @return the rank
     */
    default int getRank() {
        return 0;
    }
}
