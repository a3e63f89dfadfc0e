package org.flashdjl.tests.gpu;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import org.flashdjl.ops.cuda.CudaRuntime;

import java.util.Arrays;

/**
 * Timing for the GPU benchmarks: warm-up, then one pair of CUDA events around each repetition on the legacy
 * default stream (where the kernels run), and the sorted per-repetition times.
 */
final class GpuTiming {

    /** The options the paged and cascade benchmarks share. */
    static final class Options {
        int reps = 30;
        int warmup = 5;
        int device;
        boolean quick;

        /**
         * Parses {@code --reps N --warmup N --device N --quick}; exits with status 2 on anything else.
         *
         * @param args the command line
         * @return the options
         */
        static Options parse(String[] args) {
            Options o = new Options();
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--reps":
                        o.reps = Integer.parseInt(args[++i]);
                        break;
                    case "--warmup":
                        o.warmup = Integer.parseInt(args[++i]);
                        break;
                    case "--device":
                        o.device = Integer.parseInt(args[++i]);
                        break;
                    case "--quick":
                        o.quick = true;
                        break;
                    default:
                        System.err.println("unknown option " + args[i]
                                + "; options: --reps N --warmup N --device N --quick");
                        System.exit(2);
                }
            }
            return o;
        }

        /**
         * Binds the device's context to this thread and prints the run's header, or exits with status 3 without
         * CUDA.
         *
         * @param bench the benchmark's name
         */
        void start(String bench) {
            if (!CudaRuntime.isAvailable()) {
                System.err.println("no CUDA device: " + CudaRuntime.unavailableReason());
                System.exit(3);
            }
            CudaRuntime.bind(device);
            System.err.println(bench + " on " + CudaRuntime.getDeviceInfo(device) + ", driver "
                    + CudaRuntime.getDriverVersion() + ", reps " + reps + ", warmup " + warmup);
        }
    }

    private GpuTiming() {}

    /**
     * Times a launch sequence.
     *
     * @param r launches work on the legacy default stream
     * @param reps timed repetitions
     * @param warmup untimed repetitions first
     * @param what a name for error messages
     * @return the repetitions' times in ms, ascending
     */
    static double[] sortedMs(Runnable r, int reps, int warmup, String what) {
        for (int i = 0; i < warmup; i++) {
            r.run();
        }
        CudaRuntime.synchronize("warm-up of " + what);
        CUevent[] start = new CUevent[reps];
        CUevent[] end = new CUevent[reps];
        for (int i = 0; i < reps; i++) {
            start[i] = event();
            end[i] = event();
        }
        for (int i = 0; i < reps; i++) {
            CudaRuntime.check(JCudaDriver.cuEventRecord(start[i], (CUstream) null), "cuEventRecord");
            r.run();
            CudaRuntime.check(JCudaDriver.cuEventRecord(end[i], (CUstream) null), "cuEventRecord");
        }
        CudaRuntime.check(JCudaDriver.cuEventSynchronize(end[reps - 1]), "cuEventSynchronize");
        CudaRuntime.synchronize(what);
        double[] ms = new double[reps];
        float[] t = new float[1];
        for (int i = 0; i < reps; i++) {
            CudaRuntime.check(JCudaDriver.cuEventElapsedTime(t, start[i], end[i]), "cuEventElapsedTime");
            ms[i] = t[0];
            JCudaDriver.cuEventDestroy(start[i]);
            JCudaDriver.cuEventDestroy(end[i]);
        }
        Arrays.sort(ms);
        return ms;
    }

    /**
     * Times a launch sequence and returns the median.
     *
     * @param r launches work on the legacy default stream
     * @param reps timed repetitions
     * @param warmup untimed repetitions first
     * @param what a name for error messages
     * @return the median time in ms
     */
    static double medianMs(Runnable r, int reps, int warmup, String what) {
        return median(sortedMs(r, reps, warmup, what));
    }

    /**
     * Times launches back to back, as a model's decode loop issues them: {@code n} launches between one pair of events
     * with no event between them, {@code rounds} times after the warm-up. A launch timed alone between its own events
     * also pays the GPU's start of the next launch (~2 us on an H200: docs/PERF.md, run 77); here that overlaps the
     * previous launch's work.
     *
     * @param r launches work on the legacy default stream
     * @param n launches per round
     * @param rounds timed rounds
     * @param warmup untimed launches first
     * @param what a name for error messages
     * @return the median over the rounds of the time per launch, in ms
     */
    static double backToBackMs(Runnable r, int n, int rounds, int warmup, String what) {
        if (n < 1 || rounds < 1) {
            throw new IllegalArgumentException("n " + n + " and rounds " + rounds + " must be >= 1");
        }
        double[] perLaunch = sortedMs(() -> {
            for (int i = 0; i < n; i++) {
                r.run();
            }
        }, rounds, Math.max(1, warmup / n), what);
        for (int i = 0; i < perLaunch.length; i++) {
            perLaunch[i] /= n;
        }
        return median(perLaunch);
    }

    /**
     * Returns the median of sorted values.
     *
     * @param sorted ascending values
     * @return the median
     */
    static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static CUevent event() {
        CUevent e = new CUevent();
        CudaRuntime.check(JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
        return e;
    }
}
