package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;

import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.FusedKernels;
import org.flashdjl.ops.cuda.KernelModule;
import org.flashdjl.ops.cuda.MergeStateKernel;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.cuda.PagedPrefillKernel;
import org.junit.jupiter.api.Assumptions;

import java.util.ArrayList;
import java.util.List;

/** The guards and device probes of the GPU tests that run through DJL's PyTorch engine on CUDA NDArrays. */
final class DjlGpu {

    private DjlGpu() {}

    /** Skips, with the reason, unless DJL's PyTorch engine sees a GPU (DJL's JNI built for the machine's torch). */
    static void assumeDjlGpu() {
        String reason = noGpuReason();
        Assumptions.assumeTrue(reason == null, () -> reason);
    }

    /**
     * Returns whether DJL's PyTorch engine sees a GPU, for a class's one-time setup (its tests then call an
     * {@code assume} method in {@code @BeforeEach}, so that each is reported as skipped with the reason).
     *
     * @return true when DJL sees a GPU
     */
    static boolean available() {
        return noGpuReason() == null;
    }

    private static String noGpuReason() {
        try {
            return Engine.getEngine("PyTorch").getGpuCount() == 0
                    ? "DJL's PyTorch engine sees no GPU (CPU natives, or no CUDA device)" : null;
        } catch (RuntimeException | LinkageError e) {
            return "DJL's PyTorch engine does not load: " + e;
        }
    }

    /** {@link #assumeDjlGpu()}, then fails if a GPU exists but the fused kernels were not built. */
    static void assumeFusedKernels() {
        assumeDjlGpu();
        assertNull(KernelModule.notBuiltReason(FusedKernels.MODULE),
                "a GPU exists but the fused kernels are missing from the classpath");
    }

    /**
     * {@link #assumeDjlGpu()}, then fails if a GPU exists but any kernel module of the NDArray paths (flash, paged
     * decode and prefill, merge state, fused operators) is missing, or the JCuda driver does not load.
     */
    static void assumeAllKernels() {
        assumeDjlGpu();
        assertNull(CudaRuntime.unavailableReason(), "DJL sees a GPU but the JCuda driver API does not");
        List<String> missing = new ArrayList<>();
        for (String module : new String[] {KernelModule.FLASH_FWD, PagedDecodeKernel.MODULE,
            PagedPrefillKernel.MODULE, MergeStateKernel.MODULE, FusedKernels.MODULE}) {
            String why = KernelModule.notBuiltReason(module);
            if (why != null) {
                missing.add(module + ": " + why);
            }
        }
        assertTrue(missing.isEmpty(), "a GPU exists but kernel modules are missing from the classpath: " + missing);
    }

    /**
     * Formats a byte count.
     *
     * @param bytes the count
     * @return e.g. {@code "12.5 MiB"}
     */
    static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
    }
}
