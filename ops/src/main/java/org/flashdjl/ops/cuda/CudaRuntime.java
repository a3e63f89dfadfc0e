package org.flashdjl.ops.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;

/**
 * The CUDA driver as this library uses it: lazy {@code cuInit}, one retained primary context per device (the one
 * PyTorch uses too), binding that context to the calling thread, device properties, and one checked-call helper.
 *
 * <p>Nothing here throws from static initialisation: when libcuda or the JCuda natives cannot load (a machine
 * without a GPU driver, CI), {@link #unavailableReason()} says why and every other method throws
 * {@link IllegalStateException} with that reason. Set the system property {@code flashdjl.cuda.disabled=true} to
 * make CUDA unavailable on purpose.
 *
 * <p>JCuda's own exceptions are turned off; every driver call goes through {@link #check(int, String)}, which
 * throws a {@link CudaException} naming the call and the {@code CUresult}.
 */
public final class CudaRuntime {

    private static final Logger logger = LoggerFactory.getLogger(CudaRuntime.class);

    private CudaRuntime() {}

    /**
     * The properties of one CUDA device.
     *
     * @param ordinal the device ordinal
     * @param name the device name, e.g. {@code "NVIDIA H100 80GB HBM3"}
     * @param major compute capability major version
     * @param minor compute capability minor version
     * @param smCount the number of streaming multiprocessors
     * @param sharedMemoryPerBlockOptin the most shared memory (bytes) one CTA may take after opting in
     *     ({@code CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN}: 227 KB on Hopper, 163 KB on A100, 99 KB on
     *     compute capability 8.6 / 8.9 / 12.x)
     */
    public record DeviceInfo(int ordinal, String name, int major, int minor, int smCount,
            int sharedMemoryPerBlockOptin) {

        /**
         * Returns the compute capability as an integer, e.g. 90 for 9.0.
         *
         * @return {@code 10 * major + minor}
         */
        public int computeCapability() {
            return 10 * major + minor;
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return "cuda:" + ordinal + " " + name + " (sm_" + major + minor + ", " + smCount + " SMs, "
                    + sharedMemoryPerBlockOptin / 1024 + " KB shared memory a block)";
        }
    }

    /** The lazily initialised driver state; {@code reason} is null when CUDA works. */
    private static final class State {
        static final State INSTANCE = init();

        final String reason;
        final int deviceCount;
        final CUcontext[] contexts;
        final DeviceInfo[] infos;

        private State(String reason, int deviceCount) {
            this.reason = reason;
            this.deviceCount = deviceCount;
            this.contexts = new CUcontext[deviceCount];
            this.infos = new DeviceInfo[deviceCount];
        }

        private static State init() {
            if (Boolean.getBoolean("flashdjl.cuda.disabled")) {
                return new State("CUDA disabled by -Dflashdjl.cuda.disabled=true", 0);
            }
            try {
                JCudaDriver.setExceptionsEnabled(false);
            } catch (Throwable t) { // UnsatisfiedLinkError, NoClassDefFoundError, ExceptionInInitializerError
                return new State("the JCuda driver natives could not load (no libcuda.so.1 / NVIDIA driver?): "
                        + describe(t), 0);
            }
            try {
                int r = JCudaDriver.cuInit(0);
                if (r != CUresult.CUDA_SUCCESS) {
                    return new State("cuInit failed: " + CudaException.resultName(r), 0);
                }
                int[] count = new int[1];
                r = JCudaDriver.cuDeviceGetCount(count);
                if (r != CUresult.CUDA_SUCCESS) {
                    return new State("cuDeviceGetCount failed: " + CudaException.resultName(r), 0);
                }
                if (count[0] == 0) {
                    return new State("no CUDA device (cuDeviceGetCount = 0)", 0);
                }
                logger.debug("CUDA driver initialised: {} device(s), driver {}", count[0], driverVersionOrZero());
                return new State(null, count[0]);
            } catch (Throwable t) {
                return new State("the CUDA driver could not initialise: " + describe(t), 0);
            }
        }
    }

    private static String describe(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String msg = root.getMessage();
        if (msg == null) {
            return root.getClass().getSimpleName();
        }
        // JCuda's loader packs every attempt with stack traces into one message: keep the telling line.
        String line = msg.strip().lines().findFirst().orElse("");
        for (String l : (Iterable<String>) msg.lines()::iterator) {
            if (l.contains("cannot open shared object file") || l.contains("undefined symbol")) {
                line = l.strip();
                break;
            }
        }
        String prefix = root.getClass().getName() + ": ";
        if (line.startsWith(prefix)) {
            line = line.substring(prefix.length());
        }
        if (line.length() > 300) {
            line = line.substring(0, 300) + "...";
        }
        return root.getClass().getSimpleName() + ": " + line;
    }

    private static int driverVersionOrZero() {
        int[] v = new int[1];
        return JCudaDriver.cuDriverGetVersion(v) == CUresult.CUDA_SUCCESS ? v[0] : 0;
    }

    /**
     * Returns why CUDA cannot be used in this process, or null if it can (initialising the driver on first call).
     *
     * @return e.g. {@code "no CUDA device (cuDeviceGetCount = 0)"}, or null
     */
    public static String unavailableReason() {
        return State.INSTANCE.reason;
    }

    /**
     * Returns whether CUDA can be used in this process.
     *
     * @return true when the driver initialised and at least one device exists
     */
    public static boolean isAvailable() {
        return State.INSTANCE.reason == null;
    }

    private static State state() {
        State s = State.INSTANCE;
        if (s.reason != null) {
            throw new IllegalStateException("CUDA not available: " + s.reason);
        }
        return s;
    }

    /**
     * Returns the number of CUDA devices.
     *
     * @return the device count, 0 when CUDA is unavailable
     */
    public static int getDeviceCount() {
        return State.INSTANCE.deviceCount;
    }

    /**
     * Returns the driver's CUDA version, e.g. 13000 for 13.0.
     *
     * @return the version
     */
    public static int getDriverVersion() {
        state();
        int[] v = new int[1];
        check(JCudaDriver.cuDriverGetVersion(v), "cuDriverGetVersion");
        return v[0];
    }

    /**
     * Makes the primary context of a device current on the calling thread (retaining it on first use). Call it on
     * every thread that launches kernels or copies memory: a CUDA context is per thread.
     *
     * @param device the device ordinal
     * @return the device's primary context
     * @throws IllegalArgumentException if the ordinal is out of range
     * @throws IllegalStateException if CUDA is unavailable
     */
    public static CUcontext bind(int device) {
        CUcontext ctx = context(device);
        check(JCudaDriver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent(cuda:" + device + ")");
        return ctx;
    }

    private static CUcontext context(int device) {
        State s = state();
        checkOrdinal(s, device);
        synchronized (s.contexts) {
            if (s.contexts[device] == null) {
                CUdevice dev = new CUdevice();
                check(JCudaDriver.cuDeviceGet(dev, device), "cuDeviceGet(" + device + ")");
                CUcontext ctx = new CUcontext();
                check(JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain(cuda:" + device + ")");
                s.contexts[device] = ctx;
            }
            return s.contexts[device];
        }
    }

    private static void checkOrdinal(State s, int device) {
        if (device < 0 || device >= s.deviceCount) {
            throw new IllegalArgumentException("CUDA device ordinal " + device + " out of range; this process sees "
                    + s.deviceCount + " device(s): 0.." + (s.deviceCount - 1));
        }
    }

    /**
     * Returns a device's name, compute capability and SM count.
     *
     * @param device the device ordinal
     * @return its properties
     */
    public static DeviceInfo getDeviceInfo(int device) {
        State s = state();
        checkOrdinal(s, device);
        synchronized (s.infos) {
            if (s.infos[device] == null) {
                CUdevice dev = new CUdevice();
                check(JCudaDriver.cuDeviceGet(dev, device), "cuDeviceGet(" + device + ")");
                byte[] name = new byte[256];
                check(JCudaDriver.cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
                int len = 0;
                while (len < name.length && name[len] != 0) {
                    len++;
                }
                s.infos[device] = new DeviceInfo(device, new String(name, 0, len, StandardCharsets.UTF_8),
                        attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                        attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                        attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                        attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
            }
            return s.infos[device];
        }
    }

    private static int attribute(CUdevice dev, int attribute) {
        int[] v = new int[1];
        check(JCudaDriver.cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
        return v[0];
    }

    /**
     * Sets the maximum L2 fetch granularity of a device's primary context ({@code cuCtxSetLimit} with
     * {@code CU_LIMIT_MAX_L2_FETCH_GRANULARITY}), a hint for the memory accesses of kernels and copies.
     *
     * @param device the CUDA ordinal
     * @param bytes 0..128, a power of two
     * @throws CudaException if the driver refuses the value
     */
    public static void setL2FetchGranularity(int device, long bytes) {
        bind(device);
        check(JCudaDriver.cuCtxSetLimit(jcuda.driver.CUlimit.CU_LIMIT_MAX_L2_FETCH_GRANULARITY, bytes),
                "cuCtxSetLimit(MAX_L2_FETCH_GRANULARITY=" + bytes + ")");
    }

    /**
     * Waits for all work of the context current on this thread ({@code cuCtxSynchronize}), surfacing errors of
     * earlier asynchronous launches.
     *
     * @param what what was waited for, used in the error message (e.g. the kernel name), or null
     * @throws CudaException if the context reports an error
     */
    public static void synchronize(String what) {
        check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize", what == null ? null : "after " + what);
    }

    /**
     * Checks the result of a driver call.
     *
     * @param result the {@code CUresult}
     * @param call the call, for the message
     * @throws CudaException if {@code result != CUDA_SUCCESS}
     */
    public static void check(int result, String call) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call, result, null);
        }
    }

    /**
     * Checks the result of a driver call, adding context (e.g. the kernel being launched) to the message.
     *
     * @param result the {@code CUresult}
     * @param call the call, for the message
     * @param detail extra context, or null
     * @throws CudaException if {@code result != CUDA_SUCCESS}
     */
    public static void check(int result, String call, String detail) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call, result, detail);
        }
    }

    /**
     * Returns the device address a JCuda pointer refers to (its native pointer plus byte offset).
     *
     * @param pointer a pointer filled by e.g. {@code cuMemAlloc}, possibly offset with {@code withByteOffset}
     * @return the address
     */
    public static long address(Pointer pointer) {
        return PointerAccess.address(pointer);
    }

    /**
     * Returns the native handle of a JCuda object (a stream, an event, a context) as an address.
     *
     * @param object the JCuda object
     * @return its native pointer
     */
    static long handle(NativePointerObject object) {
        return PointerAccess.handle(object);
    }

    /**
     * Returns a JCuda device pointer for an address.
     *
     * @param address a device address
     * @return a pointer that JCuda calls accept
     */
    public static CUdeviceptr pointer(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    /** Reads JCuda's protected pointer fields (JCuda has no public accessor). */
    private static final class PointerAccess {
        private static final Method NATIVE_POINTER;
        private static final Method BYTE_OFFSET;

        static {
            try {
                NATIVE_POINTER = NativePointerObject.class.getDeclaredMethod("getNativePointer");
                NATIVE_POINTER.setAccessible(true);
                BYTE_OFFSET = Pointer.class.getDeclaredMethod("getByteOffset");
                BYTE_OFFSET.setAccessible(true);
            } catch (ReflectiveOperationException | RuntimeException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        static long address(Pointer p) {
            try {
                return (Long) NATIVE_POINTER.invoke(p) + (Long) BYTE_OFFSET.invoke(p);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read a JCuda pointer's address", e);
            }
        }

        static long handle(NativePointerObject o) {
            try {
                return (Long) NATIVE_POINTER.invoke(o);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read a JCuda handle", e);
            }
        }
    }
}
