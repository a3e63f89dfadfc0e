package org.flashdjl.tests.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Peak extra memory of one attention call, in a fresh process: resident set high-water mark (VmHWM) after the
 * call minus the resident set once the inputs exist. libtorch allocates outside the Java heap, so this is the
 * number that matters.
 *
 * <pre>MemoryProbe BACKEND SEQ HEADS DIM CAUSAL</pre>
 */
public final class MemoryProbe {

    private MemoryProbe() {}

    /**
     * Runs one probe and prints one JSON line.
     *
     * @param args backend, seq, heads, dim, causal
     * @throws IOException if /proc cannot be read
     */
    public static void main(String[] args) throws IOException {
        String backend = args[0];
        int seq = Integer.parseInt(args[1]);
        int heads = Integer.parseInt(args[2]);
        int dim = Integer.parseInt(args[3]);
        boolean causal = Boolean.parseBoolean(args[4]);
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(1, heads, seq, dim);
            NDArray q = manager.randomNormal(shape);
            NDArray k = manager.randomNormal(shape);
            NDArray v = manager.randomNormal(shape);
            AttentionSpec spec = AttentionSpec.builder().optCausal(causal).build();
            // Warm the allocator and libtorch's thread pool on a tiny call first.
            Attention.forward(q.get(":, :, :8"), k.get(":, :, :8"), v.get(":, :, :8"), spec, backend).close();
            long base = status("VmRSS");
            resetPeak();
            long t0 = System.nanoTime();
            Attention.forward(q, k, v, spec, backend).close();
            double ms = (System.nanoTime() - t0) / 1e6;
            long peak = status("VmHWM");
            System.out.printf(Locale.ROOT, "{\"backend\":\"%s\",\"seq\":%d,\"heads\":%d,\"dim\":%d,\"causal\":%b,"
                    + "\"ms\":%.1f,\"extraMiB\":%.1f}%n", backend, seq, heads, dim, causal, ms,
                    (peak - base) / 1024.0);
        }
    }

    // Clears VmHWM so it measures from now (Linux >= 4.0: write 5 to clear_refs).
    private static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            System.err.println("cannot reset VmHWM: " + e.getMessage() + "; the peak includes setup");
        }
    }

    private static long status(String key) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(key + ":")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")); // kB
            }
        }
        throw new IOException(key + " not in /proc/self/status");
    }
}
