package org.flashdjl.ops;

/**
 * What every FlashDJL backend SPI shares ({@link org.flashdjl.ops.attention.AttentionBackend dense},
 * {@link org.flashdjl.ops.paged.PagedAttentionBackend paged}): a name, a description, whether it can run in this
 * process and whether it can run a given problem. A {@link BackendRegistry} finds the implementations with
 * {@link java.util.ServiceLoader}, as DJL finds engines: a jar that lists its class in
 * {@code META-INF/services/<the SPI's class name>} adds a backend, and the registry hands out that very object.
 *
 * @param <P> what one call is described by (an {@code AttentionProblem}, a {@code PagedPlan})
 */
public interface Backend<P> {

    /**
     * Returns the backend's name, e.g. {@code "online"}.
     *
     * @return the name that selects it
     */
    String getName();

    /**
     * Returns a one-line description for the capability report.
     *
     * @return the description
     */
    String getDescription();

    /**
     * Returns why this backend cannot run in this process (no GPU, kernels not built, a missing driver), or null
     * if it can. Called for every {@code auto} selection: keep it cheap (cache the probe).
     *
     * @return the reason or null
     */
    String unavailableReason();

    /**
     * Returns why this backend cannot run a problem (device, dtype, head dim, an option), or null if it can.
     * Called only when {@link #unavailableReason()} is null.
     *
     * @param problem a validated problem
     * @return the reason or null
     */
    String unsupportedReason(P problem);

    /**
     * Returns the backend's rank: {@code auto} picks the highest-ranked backend that is available and supports
     * the problem, and of two backends registered under one name the higher rank wins (on a tie, the first
     * registered: the built-ins). Built-in ranks: {@code math} 0, {@code online} and {@code gather} 10, the CUDA
     * backends 100.
     *
     * @return the rank (default 0)
     */
    default int getRank() {
        return 0;
    }
}
