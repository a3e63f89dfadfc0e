package org.flashdjl.ops.parallel.nccl;

import org.flashdjl.ops.cuda.CudaException;
import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Distributed init: boots this process's {@link ProcessGroup} from the launcher's
 * environment in one call, with sensible defaults.
 *
 * <pre>{@code
 * // NCCL_NVLS_ENABLE=0 RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 java ...
 * try (ProcessGroup group = Distributed.init()) {
 *     attention.setContextParallelGroup(group);
 * }
 * }</pre>
 *
 * <p>Environment (torchrun names): {@code RANK} (default 0), {@code WORLD_SIZE} (default 1), {@code LOCAL_RANK}
 * (default: RANK), {@code MASTER_ADDR} (default 127.0.0.1), {@code MASTER_PORT} (default 29500), and
 * {@code FLASHDJL_PG_TIMEOUT_S} (default 600 s, the bound on every wait). The device is {@code LOCAL_RANK} unless
 * set with {@link Builder#optDevice}.
 *
 * <ul>
 *   <li>{@code WORLD_SIZE = 1}: a one-rank {@link LocalProcessGroup} (context parallelism off), unless the NCCL
 *       backend is asked for explicitly.
 *   <li>{@code WORLD_SIZE > 1}: NCCL. The unique id goes from rank 0 to every rank through {@link NcclRendezvous}
 *       at MASTER_ADDR:MASTER_PORT; the communicator is non-blocking so every wait is bounded; the maximum L2 fetch
 *       granularity is raised to 128 bytes on the rank's device (as flashdreams' distributed init does).
 * </ul>
 *
 * <p>NVLink multicast (NVLS) must be off: NCCL reads {@code NCCL_NVLS_ENABLE} from the environment, which a JVM
 * cannot change after it started. {@code init} refuses to start unless {@code NCCL_NVLS_ENABLE=0} is set (the
 * launcher scripts set it), or only warns with {@link Builder#optRequireNvlsDisabled optRequireNvlsDisabled(false)}.
 * CPU affinity from NVML, which the seed also sets, is left to the launcher ({@code numactl}/{@code taskset}).
 */
public final class Distributed {

    /** The default bound on every wait. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);

    /** The default rendezvous port. */
    public static final int DEFAULT_MASTER_PORT = 29500;

    private static final Logger logger = LoggerFactory.getLogger(Distributed.class);

    private Distributed() {}

    /**
     * Boots the group from the process environment with every default.
     *
     * @return this process's group
     */
    public static ProcessGroup init() {
        return builder().init();
    }

    /**
     * Returns a builder reading the process environment.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** The backends {@link Builder#optBackend} accepts. */
    public enum Backend {
        /** NCCL when the world has more than one rank, else a one-rank local group. */
        AUTO,
        /** Always NCCL (also for one rank). */
        NCCL,
        /** A one-rank local group (WORLD_SIZE must be 1: local groups of more ranks live in one JVM). */
        LOCAL
    }

    /**
     * The resolved launch settings.
     *
     * @param rank this process's rank
     * @param world the number of ranks
     * @param localRank the rank on this node
     * @param device the CUDA device ordinal
     * @param masterAddr rank 0's address
     * @param masterPort rank 0's rendezvous port
     * @param timeout the bound on every wait
     * @param backend the backend that will be used (never AUTO)
     */
    public record Config(int rank, int world, int localRank, int device, String masterAddr, int masterPort,
            Duration timeout, Backend backend) {}

    /** Builds the group; every option is optional. */
    public static final class Builder {
        private Map<String, String> env = System.getenv();
        private Duration timeout;
        private Integer device;
        private Backend backend = Backend.AUTO;
        private boolean requireNvlsDisabled = true;
        private long l2FetchGranularity = 128;

        private Builder() {}

        /**
         * Reads the settings from this map instead of the process environment (tests, embedding).
         *
         * @param env the variables
         * @return this builder
         */
        public Builder optEnvironment(Map<String, String> env) {
            this.env = Objects.requireNonNull(env, "env");
            return this;
        }

        /**
         * Sets the bound on every wait (default {@code FLASHDJL_PG_TIMEOUT_S} or 10 min).
         *
         * @param timeout a positive duration
         * @return this builder
         */
        public Builder optTimeout(Duration timeout) {
            if (timeout == null || timeout.isZero() || timeout.isNegative()) {
                throw new IllegalArgumentException("timeout must be > 0, got " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /**
         * Sets the CUDA device (default LOCAL_RANK).
         *
         * @param device the device ordinal, {@code >= 0}
         * @return this builder
         */
        public Builder optDevice(int device) {
            if (device < 0) {
                throw new IllegalArgumentException("device must be >= 0, got " + device);
            }
            this.device = device;
            return this;
        }

        /**
         * Sets the backend (default auto).
         *
         * @param backend auto, nccl or local
         * @return this builder
         */
        public Builder optBackend(Backend backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * Sets the backend by name.
         *
         * @param backend {@code "auto"}, {@code "nccl"} or {@code "local"}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            for (Backend b : Backend.values()) {
                if (b.name().equalsIgnoreCase(backend)) {
                    return optBackend(b);
                }
            }
            throw new IllegalArgumentException("unknown process group backend '" + backend
                    + "'; allowed: auto, nccl, local");
        }

        /**
         * Sets whether init refuses to start NCCL unless {@code NCCL_NVLS_ENABLE=0} (default true; false only
         * warns).
         *
         * @param require true to refuse
         * @return this builder
         */
        public Builder optRequireNvlsDisabled(boolean require) {
            this.requireNvlsDisabled = require;
            return this;
        }

        /**
         * Sets the maximum L2 fetch granularity set on the device (bytes, 0 to leave the driver's default; default
         * 128).
         *
         * @param bytes 0, 32, 64 or 128
         * @return this builder
         */
        public Builder optL2FetchGranularity(long bytes) {
            if (bytes != 0 && bytes != 32 && bytes != 64 && bytes != 128) {
                throw new IllegalArgumentException("L2 fetch granularity must be 0 (driver default), 32, 64 or 128,"
                        + " got " + bytes);
            }
            this.l2FetchGranularity = bytes;
            return this;
        }

        /**
         * Resolves the settings from the environment without starting anything.
         *
         * @return the settings
         * @throws IllegalArgumentException for malformed or inconsistent variables, naming them
         */
        public Config resolve() {
            int world = intVar("WORLD_SIZE", 1, 1);
            int rank = intVar("RANK", 0, 0);
            if (rank >= world) {
                throw new IllegalArgumentException("RANK=" + rank + " must be < WORLD_SIZE=" + world);
            }
            int localRank = intVar("LOCAL_RANK", rank, 0);
            String addr = env.getOrDefault("MASTER_ADDR", "127.0.0.1").trim();
            if (addr.isEmpty()) {
                throw new IllegalArgumentException("MASTER_ADDR is empty; set rank 0's host name or address");
            }
            int port = intVar("MASTER_PORT", DEFAULT_MASTER_PORT, 1);
            if (port > 65535) {
                throw new IllegalArgumentException("MASTER_PORT=" + port + " must be 1..65535");
            }
            Duration t = timeout;
            if (t == null) {
                t = Duration.ofSeconds(intVar("FLASHDJL_PG_TIMEOUT_S", (int) DEFAULT_TIMEOUT.toSeconds(), 1));
            }
            Backend b = backend;
            if (b == Backend.AUTO) {
                b = world == 1 ? Backend.LOCAL : Backend.NCCL;
            }
            if (b == Backend.LOCAL && world > 1) {
                throw new IllegalArgumentException("the local backend is one JVM: WORLD_SIZE=" + world + " needs the"
                        + " nccl backend, or LocalProcessGroup.create(" + world + ") for ranks as threads");
            }
            return new Config(rank, world, localRank, device != null ? device : localRank, addr, port, t, b);
        }

        /**
         * Boots the group.
         *
         * @return this process's group
         * @throws IllegalStateException when NCCL is needed but unavailable, or NVLS is not disabled
         * @throws ProcessGroupException when the ranks do not meet within the timeout
         */
        public ProcessGroup init() {
            Config c = resolve();
            if (c.backend() == Backend.LOCAL) {
                logger.info("distributed init: single process, context parallelism off");
                return LocalProcessGroup.create(1, c.timeout()).get(0);
            }
            String nvls = env.get("NCCL_NVLS_ENABLE");
            if (!"0".equals(nvls == null ? null : nvls.trim())) {
                String msg = "NCCL_NVLS_ENABLE is " + (nvls == null ? "unset" : "'" + nvls + "'") + ": NVLink"
                        + " multicast must be off (NCCL_NVLS_ENABLE=0) and NCCL reads it from the environment at"
                        + " start, which a running JVM cannot change. Start the JVM with NCCL_NVLS_ENABLE=0 (the"
                        + " launcher scripts do)";
                if (requireNvlsDisabled) {
                    throw new IllegalStateException(msg + ", or pass optRequireNvlsDisabled(false).");
                }
                logger.warn("{}.", msg);
            }
            String why = NcclProcessGroup.unavailableReason();
            if (why != null) {
                throw new IllegalStateException("WORLD_SIZE=" + c.world() + " needs NCCL on CUDA, which is not"
                        + " available: " + why);
            }
            logger.info("distributed init: rank {}/{} (local rank {}) on cuda:{}, rendezvous {}:{}, timeout {}",
                    c.rank(), c.world(), c.localRank(), c.device(), c.masterAddr(), c.masterPort(), c.timeout());
            byte[] id = NcclRendezvous.exchange(c.rank(), c.world(), c.masterAddr(), c.masterPort(), c.timeout(),
                    NcclProcessGroup::newUniqueId);
            NcclProcessGroup group = NcclProcessGroup.create(c.rank(), c.world(), c.device(), id, c.timeout());
            if (l2FetchGranularity > 0) {
                try {
                    CudaRuntime.setL2FetchGranularity(c.device(), l2FetchGranularity);
                } catch (CudaException e) {
                    logger.warn("could not set the L2 fetch granularity to {}: {}", l2FetchGranularity,
                            e.getMessage());
                }
            }
            return group;
        }

        private int intVar(String name, int dflt, int min) {
            String v = env.get(name);
            if (v == null || v.isBlank()) {
                return dflt;
            }
            int x;
            try {
                x = Integer.parseInt(v.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + "='" + v + "' is not an integer", e);
            }
            if (x < min) {
                throw new IllegalArgumentException(name + "=" + x + " must be >= " + min);
            }
            return x;
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "Distributed.Builder{backend=" + backend.name().toLowerCase(Locale.ROOT) + "}";
        }
    }
}
