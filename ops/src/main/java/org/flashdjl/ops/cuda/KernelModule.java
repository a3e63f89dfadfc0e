package org.flashdjl.ops.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A fatbin built by nvcc at {@code mvn package} time and shipped as a classpath resource, loaded once per device
 * (into the device's primary context) with {@code cuModuleLoadData}; its kernels and their launch configurations
 * are cached.
 *
 * <p>Each kernel {@code N} comes with {@code __device__ int N_cfg[] = {threadsPerBlock, dynamicSmemBytes,
 * rowsPerBlock, colsPerBlock[, persistentBlocks]}}, read once with {@code cuModuleGetGlobal}; the kernel's dynamic
 * shared memory limit is raised to what the configuration asks.
 */
public final class KernelModule {

    /** The flash-attention forward kernels ({@code ops/src/main/cuda/flash_fwd.cu}). */
    public static final String FLASH_FWD = "org/flashdjl/ops/cuda/flash_fwd.fatbin";

    /** The Hopper (sm_90a only) wgmma flash-attention forward kernels. */
    public static final String FLASH_FWD_SM90 = "org/flashdjl/ops/cuda/flash_fwd_sm90.fatbin";

    private static final Logger logger = LoggerFactory.getLogger(KernelModule.class);

    private static final Map<String, byte[]> IMAGES = new ConcurrentHashMap<>();
    private static final Map<String, KernelModule> MODULES = new ConcurrentHashMap<>();

    private final String resource;
    private final int device;
    private final CUmodule module;
    private final Map<String, Kernel> kernels = new ConcurrentHashMap<>();

    private KernelModule(String resource, int device, CUmodule module) {
        this.resource = resource;
        this.device = device;
        this.module = module;
    }

    /**
     * Returns why a fatbin resource cannot be used, or null when it is on the classpath.
     *
     * @param resource the classpath resource, e.g. {@link #FLASH_FWD}
     * @return e.g. {@code "kernels not built: ..."}, or null
     */
    public static String notBuiltReason(String resource) {
        return image(resource) == null
                ? "kernels not built: classpath resource " + resource + " is missing (the Maven build skipped nvcc:"
                        + " nvcc not found or -Dflashdjl.skipCuda=true)"
                : null;
    }

    private static byte[] image(String resource) {
        byte[] cached = IMAGES.get(resource);
        if (cached != null) {
            return cached.length == 0 ? null : cached;
        }
        byte[] bytes;
        try (InputStream in = KernelModule.class.getClassLoader().getResourceAsStream(resource)) {
            bytes = in == null ? new byte[0] : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read classpath resource " + resource, e);
        }
        IMAGES.put(resource, bytes);
        return bytes.length == 0 ? null : bytes;
    }

    /**
     * Returns the module of a fatbin resource on a device, loading it on first use; binds the device's primary
     * context to the calling thread.
     *
     * @param resource the classpath resource, e.g. {@link #FLASH_FWD}
     * @param device the CUDA device ordinal
     * @return the loaded module
     * @throws IllegalStateException if CUDA is unavailable or the resource is missing
     * @throws CudaException if the driver cannot load it (e.g. {@code CUDA_ERROR_NO_BINARY_FOR_GPU})
     */
    public static KernelModule get(String resource, int device) {
        CudaRuntime.bind(device);
        String key = resource + "@" + device;
        KernelModule loaded = MODULES.get(key); // the launch path: no lock once loaded
        if (loaded != null) {
            return loaded;
        }
        synchronized (MODULES) {
            KernelModule m = MODULES.get(key);
            if (m == null) {
                byte[] image = image(resource);
                if (image == null) {
                    throw new IllegalStateException(notBuiltReason(resource));
                }
                CUmodule module = new CUmodule();
                long t0 = System.nanoTime();
                CudaRuntime.check(JCudaDriver.cuModuleLoadData(module, image),
                        "cuModuleLoadData(" + resource + ")", "device " + CudaRuntime.getDeviceInfo(device));
                logger.debug("loaded {} ({} bytes) on cuda:{} in {} ms", resource, image.length, device,
                        (System.nanoTime() - t0) / 1_000_000);
                m = new KernelModule(resource, device, module);
                MODULES.put(key, m);
            }
            return m;
        }
    }

    /**
     * Returns the resource this module was loaded from.
     *
     * @return the resource name
     */
    public String getResource() {
        return resource;
    }

    /**
     * Returns the device ordinal.
     *
     * @return the ordinal
     */
    public int getDevice() {
        return device;
    }

    /**
     * Returns a kernel and its launch configuration.
     *
     * @param name the {@code extern "C"} kernel name
     * @return the kernel
     * @throws CudaException if the fatbin has no such kernel or configuration
     */
    public Kernel getKernel(String name) {
        Kernel k = kernels.get(name);
        if (k == null) {
            k = kernels.computeIfAbsent(name, this::load);
        }
        return k;
    }

    private Kernel load(String name) {
        CudaRuntime.bind(device);
        CUfunction function = new CUfunction();
        int r = JCudaDriver.cuModuleGetFunction(function, module, name);
        if (r == CUresult.CUDA_ERROR_NOT_FOUND) {
            throw new CudaException("cuModuleGetFunction(" + name + ")", r, "kernel '" + name + "' is not in "
                    + resource + " (built from an older kernel source?)");
        }
        CudaRuntime.check(r, "cuModuleGetFunction(" + name + ")");
        String cfgName = name + "_cfg";
        CUdeviceptr cfgPtr = new CUdeviceptr();
        long[] cfgBytes = new long[1];
        CudaRuntime.check(JCudaDriver.cuModuleGetGlobal(cfgPtr, cfgBytes, module, cfgName),
                "cuModuleGetGlobal(" + cfgName + ")", "every kernel N needs __device__ int N_cfg[4]");
        if (cfgBytes[0] < 16 || cfgBytes[0] % 4 != 0) {
            throw new IllegalStateException(cfgName + " has " + cfgBytes[0] + " bytes; expected int[>= 4]");
        }
        int[] cfg = new int[(int) (cfgBytes[0] / 4)];
        CudaRuntime.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(cfg), cfgPtr, cfgBytes[0]),
                "cuMemcpyDtoH(" + cfgName + ")");
        Kernel k = new Kernel(name, function, cfg);
        if (k.threadsPerBlock() <= 0 || k.dynamicSmemBytes() < 0 || k.rowsPerBlock() <= 0) {
            throw new IllegalStateException(cfgName + " = " + Arrays.toString(cfg) + " is not a valid configuration");
        }
        CudaRuntime.check(JCudaDriver.cuFuncSetAttribute(function,
                CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k.dynamicSmemBytes()),
                "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES=" + k.dynamicSmemBytes() + ")",
                "kernel " + name + " on " + CudaRuntime.getDeviceInfo(device));
        logger.debug("kernel {} cfg {}", name, Arrays.toString(cfg));
        return k;
    }

    /** One kernel of a module with its launch configuration. */
    public static final class Kernel {
        private final String name;
        private final CUfunction function;
        private final int[] config; // {threadsPerBlock, dynamicSmemBytes, rowsPerBlock, colsPerBlock, ...}

        Kernel(String name, CUfunction function, int[] config) {
            this.name = name;
            this.function = function;
            this.config = config;
        }

        /**
         * Returns the kernel name.
         *
         * @return the name
         */
        public String getName() {
            return name;
        }

        /**
         * Returns the whole configuration array.
         *
         * @return a copy of {@code N_cfg}
         */
        public int[] getConfig() {
            return config.clone();
        }

        /**
         * Returns the block size.
         *
         * @return threads per block
         */
        public int threadsPerBlock() {
            return config[0];
        }

        /**
         * Returns the dynamic shared memory per block.
         *
         * @return bytes
         */
        public int dynamicSmemBytes() {
            return config[1];
        }

        /**
         * Returns the query rows one block handles.
         *
         * @return rows per block
         */
        public int rowsPerBlock() {
            return config[2];
        }

        /**
         * Returns the key columns of one tile.
         *
         * @return columns per block
         */
        public int colsPerBlock() {
            return config[3];
        }

        /**
         * Returns the most query blocks per (sequence, head) for which the launcher runs this kernel's persistent form
         * {@code <name>_persistent} instead ({@link KernelLauncher#CUDA}: at most one CTA per SM, each walking several
         * of the grid's blocks); 0 when it has none.
         *
         * @return {@code N_cfg[4]}, or 0 when the configuration has no fifth entry
         */
        public int persistentBlocks() {
            return config.length > 4 ? Math.max(0, config[4]) : 0;
        }

        /**
         * Launches the kernel on the legacy default stream (stream 0, where DJL's eager ops run) with one
         * by-value struct argument. The caller binds the context ({@link CudaRuntime#bind}).
         *
         * @param gridX blocks in x
         * @param gridY blocks in y
         * @param gridZ blocks in z
         * @param argument the struct's bytes
         * @throws CudaException naming the kernel and grid if the launch fails
         */
        public void launch(int gridX, int gridY, int gridZ, byte[] argument) {
            int r = JCudaDriver.cuLaunchKernel(function, gridX, gridY, gridZ, threadsPerBlock(), 1, 1,
                    dynamicSmemBytes(), (CUstream) null, Pointer.to(Pointer.to(argument)), null);
            CudaRuntime.check(r, "cuLaunchKernel(" + name + ")", "grid (" + gridX + ", " + gridY + ", " + gridZ
                    + "), block " + threadsPerBlock() + ", dynamic smem " + dynamicSmemBytes() + " bytes");
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return name + Arrays.toString(config);
        }
    }
}
