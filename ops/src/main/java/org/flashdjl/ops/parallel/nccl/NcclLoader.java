package org.flashdjl.ops.parallel.nccl;

import com.sun.jna.Native;

import org.flashdjl.ops.cuda.CudaRuntime;

/**
 * Loads {@code libnccl.so.2} once, lazily, through JNA, and says why NCCL cannot be used (no CUDA through
 * {@link CudaRuntime}, which owns the driver, or no NCCL library). The file name can be overridden with the system
 * property {@code flashdjl.nccl.library}.
 */
final class NcclLoader {

    private static volatile Holder holder;

    private NcclLoader() {}

    /** The loaded library, or why not. */
    private record Holder(NcclLibrary nccl, String unavailable) {}

    private static Holder holder() {
        Holder h = holder;
        if (h == null) {
            synchronized (NcclLoader.class) {
                h = holder;
                if (h == null) {
                    h = load();
                    holder = h;
                }
            }
        }
        return h;
    }

    private static Holder load() {
        String cuda = CudaRuntime.unavailableReason();
        if (cuda != null) {
            return new Holder(null, "CUDA is not available: " + cuda);
        }
        String override = System.getProperty("flashdjl.nccl.library");
        StringBuilder errors = new StringBuilder();
        for (String name : override != null ? new String[] {override} : new String[] {"libnccl.so.2", "nccl"}) {
            try {
                return new Holder(Native.load(name, NcclLibrary.class), null);
            } catch (UnsatisfiedLinkError e) {
                errors.append(errors.length() == 0 ? "" : "; ").append(name).append(": ")
                        .append(e.getMessage().lines().findFirst().orElse(""));
            }
        }
        return new Holder(null, "NCCL (libnccl.so.2) could not be loaded: [" + errors + "]");
    }

    /**
     * Returns why NCCL on CUDA cannot be used here, or null when it can.
     *
     * @return the reason or null
     */
    static String unavailableReason() {
        return holder().unavailable();
    }

    /**
     * Returns the NCCL library.
     *
     * @return the library
     * @throws IllegalStateException with the reason when it is not available
     */
    static NcclLibrary nccl() {
        Holder h = holder();
        if (h.unavailable() != null) {
            throw new IllegalStateException("NCCL is not available: " + h.unavailable());
        }
        return h.nccl();
    }
}
