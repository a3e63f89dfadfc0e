package org.flashdjl.ops.parallel;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import java.util.ArrayList;
import java.util.List;

/**
 * Loads {@code libnccl.so.2} and {@code libcuda.so.1} once, lazily, and says why they cannot be used. The file
 * names can be overridden with the system properties {@code flashdjl.nccl.library} and
 * {@code flashdjl.cuda.library}.
 */
final class NativeLibraries {

    private static volatile Holder holder;

    private NativeLibraries() {}

    /** The loaded libraries, or why not. */
    private static final class Holder {
        final NcclLibrary nccl;
        final CudaDriverLibrary cuda;
        final String unavailable;
        final int deviceCount;

        Holder(NcclLibrary nccl, CudaDriverLibrary cuda, String unavailable, int deviceCount) {
            this.nccl = nccl;
            this.cuda = cuda;
            this.unavailable = unavailable;
            this.deviceCount = deviceCount;
        }
    }

    private static Holder holder() {
        Holder h = holder;
        if (h == null) {
            synchronized (NativeLibraries.class) {
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
        List<String> errors = new ArrayList<>();
        CudaDriverLibrary cuda = load(CudaDriverLibrary.class, System.getProperty("flashdjl.cuda.library"),
                new String[] {"libcuda.so.1", "cuda"}, errors);
        if (cuda == null) {
            return new Holder(null, null, "the CUDA driver (libcuda.so.1) could not be loaded: " + errors, 0);
        }
        int rc = cuda.cuInit(0);
        if (rc != CudaDriverLibrary.SUCCESS) {
            return new Holder(null, cuda, "cuInit failed: " + cudaError(cuda, rc), 0);
        }
        IntByReference count = new IntByReference();
        rc = cuda.cuDeviceGetCount(count);
        if (rc != CudaDriverLibrary.SUCCESS || count.getValue() == 0) {
            return new Holder(null, cuda, "no CUDA device (" + (rc != 0 ? cudaError(cuda, rc) : "count 0") + ")", 0);
        }
        NcclLibrary nccl = load(NcclLibrary.class, System.getProperty("flashdjl.nccl.library"),
                new String[] {"libnccl.so.2", "nccl"}, errors);
        if (nccl == null) {
            return new Holder(null, cuda, "NCCL (libnccl.so.2) could not be loaded: " + errors, count.getValue());
        }
        return new Holder(nccl, cuda, null, count.getValue());
    }

    private static <T extends Library> T load(Class<T> type, String override, String[] names, List<String> errors) {
        String[] candidates = override != null ? new String[] {override} : names;
        for (String name : candidates) {
            try {
                return Native.load(name, type);
            } catch (UnsatisfiedLinkError e) {
                errors.add(name + ": " + e.getMessage().lines().findFirst().orElse(""));
            }
        }
        return null;
    }

    /**
     * Returns why NCCL on CUDA cannot be used here, or null when it can.
     *
     * @return the reason or null
     */
    static String unavailableReason() {
        return holder().unavailable;
    }

    /**
     * Returns the number of CUDA devices, 0 without a driver.
     *
     * @return the device count
     */
    static int deviceCount() {
        return holder().deviceCount;
    }

    static NcclLibrary nccl() {
        Holder h = holder();
        if (h.unavailable != null) {
            throw new IllegalStateException("NCCL is not available: " + h.unavailable);
        }
        return h.nccl;
    }

    static CudaDriverLibrary cuda() {
        Holder h = holder();
        if (h.cuda == null) {
            throw new IllegalStateException("CUDA is not available: " + h.unavailable);
        }
        return h.cuda;
    }

    static String cudaError(CudaDriverLibrary cuda, int rc) {
        PointerByReference msg = new PointerByReference();
        String text = cuda.cuGetErrorString(rc, msg) == 0 && msg.getValue() != null ? msg.getValue().getString(0)
                : "unknown";
        return "CUDA error " + rc + " (" + text + ")";
    }
}
