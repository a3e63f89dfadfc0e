package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertNull;

import ai.djl.engine.Engine;

import org.flashdjl.ops.cuda.FusedKernels;
import org.flashdjl.ops.cuda.KernelModule;
import org.junit.jupiter.api.Assumptions;

/** The guards of the GPU tests that run through DJL's PyTorch engine on CUDA NDArrays. */
final class DjlGpu {

    private DjlGpu() {}

    /** Skips, with the reason, unless DJL's PyTorch engine sees a GPU (DJL's JNI built for the machine's torch). */
    static void assumeDjlGpu() {
        int gpus;
        String why;
        try {
            gpus = Engine.getEngine("PyTorch").getGpuCount();
            why = gpus == 0 ? "DJL's PyTorch engine sees no GPU (CPU natives, or no CUDA device)" : null;
        } catch (RuntimeException | LinkageError e) {
            gpus = 0;
            why = "DJL's PyTorch engine does not load: " + e;
        }
        String reason = why;
        Assumptions.assumeTrue(gpus > 0, () -> reason);
    }

    /** {@link #assumeDjlGpu()}, then fails if a GPU exists but the fused kernels were not built. */
    static void assumeFusedKernels() {
        assumeDjlGpu();
        assertNull(KernelModule.notBuiltReason(FusedKernels.MODULE),
                "a GPU exists but the fused kernels are missing from the classpath");
    }
}
