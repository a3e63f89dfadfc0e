package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The NDManagers of a GPU test class that runs through DJL's PyTorch engine, as a JUnit 5 extension: a base manager
 * on {@code Device.gpu()} and one on the CPU, made once for the class when DJL sees a GPU (before the class's own
 * {@code @BeforeAll} methods, which may load models into them) and closed after its last test (after its own
 * {@code @AfterAll} methods). Before each test the class's guard runs, e.g. {@link DjlGpu#assumeAllKernels()}, so
 * that every test of a machine without the GPU or the kernels is reported as skipped with the reason.
 *
 * <pre>{@code
 * @RegisterExtension
 * static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);
 * ...
 * try (NDManager m = MANAGERS.gpu().newSubManager()) { ... }
 * }</pre>
 */
final class DjlManagers implements BeforeAllCallback, BeforeEachCallback, AfterAllCallback {

    private final Runnable guard;
    private NDManager gpu;
    private NDManager cpu;

    /**
     * Creates the extension.
     *
     * @param guard what each test requires, as a JUnit assumption (it skips the test) or assertion
     */
    DjlManagers(Runnable guard) {
        this.guard = guard;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (DjlGpu.available()) {
            gpu = NDManager.newBaseManager(Device.gpu());
            cpu = NDManager.newBaseManager(Device.cpu());
        }
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        guard.run();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (gpu != null) {
            gpu.close();
            cpu.close();
            gpu = null;
            cpu = null;
        }
    }

    /**
     * Returns the class's GPU manager (a test past its guard always has one).
     *
     * @return the base manager on {@code Device.gpu()}
     */
    NDManager gpu() {
        return gpu;
    }

    /**
     * Returns the class's CPU manager (for references and for inputs that must stay on the host).
     *
     * @return the base manager on {@code Device.cpu()}
     */
    NDManager cpu() {
        return cpu;
    }
}
