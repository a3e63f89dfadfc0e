package org.flashdjl.tests.gpu;

import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starts {@link NcclWorker} ranks as child JVMs (the same java binary and class path), one per GPU, with the
 * torchrun environment, and collects their exit codes and output. Used by {@code NcclTwoProcessTest}, and runnable
 * on its own where the GPU bundle has no Maven: {@code java -cp <jars> org.flashdjl.tests.gpu.NcclLauncher}.
 */
public final class NcclLauncher {

    /** The outcome of one child process. */
    public record RankResult(int rank, int exitCode, String output, long millis) {}

    private NcclLauncher() {}

    /**
     * Returns why the two-GPU NCCL checks cannot run here, or null.
     *
     * @return the reason or null
     */
    public static String skipReason() {
        String why = NcclProcessGroup.unavailableReason();
        if (why != null) {
            return "NCCL unavailable: " + why;
        }
        int n = NcclProcessGroup.deviceCount();
        return n < 2 ? "needs 2 CUDA devices, found " + n : null;
    }

    /**
     * Runs the collectives check on two ranks.
     *
     * @param timeoutSeconds the process-group timeout of each rank
     * @param limitSeconds how long to wait for the children
     * @return both ranks' results
     * @throws IOException if the children cannot start
     * @throws InterruptedException if interrupted
     */
    public static List<RankResult> collectives(int timeoutSeconds, int limitSeconds)
            throws IOException, InterruptedException {
        List<Child> children = start("collectives", 2, timeoutSeconds, limitSeconds);
        List<RankResult> results = new ArrayList<>();
        for (Child c : children) {
            results.add(c.await(limitSeconds));
        }
        return results;
    }

    /**
     * Runs the dead-peer check: both ranks join, then rank 1 is killed and rank 0 must fail on its own.
     *
     * @param timeoutSeconds the process-group timeout of each rank
     * @param limitSeconds how long to wait for READY and then for rank 0 to exit, beyond the timeout
     * @return rank 0's result (exit code, output, milliseconds from the kill to its exit)
     * @throws IOException if the children cannot start
     * @throws InterruptedException if interrupted
     */
    public static RankResult killOne(int timeoutSeconds, int limitSeconds) throws IOException, InterruptedException {
        List<Child> children = start("kill", 2, timeoutSeconds, timeoutSeconds + limitSeconds);
        try {
            for (Child c : children) {
                if (!c.ready.await(limitSeconds, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("rank " + c.rank + " did not get READY within " + limitSeconds
                            + " s:\n" + c.output);
                }
            }
            Thread.sleep(500);
            children.get(1).process.destroyForcibly();
            children.get(1).process.waitFor(30, TimeUnit.SECONDS);
            long killed = System.nanoTime();
            RankResult r = children.get(0).await(timeoutSeconds + limitSeconds);
            return new RankResult(0, r.exitCode(), r.output(), (System.nanoTime() - killed) / 1_000_000);
        } finally {
            for (Child c : children) {
                c.process.destroyForcibly();
            }
        }
    }

    /**
     * Runs the context-parallel attention check ({@link DeviceAttentionCheck}) on two ranks.
     *
     * @param quick only the small cases
     * @param timeoutSeconds the process-group timeout of each rank
     * @param limitSeconds how long to wait for the children
     * @return both ranks' results
     * @throws IOException if the children cannot start
     * @throws InterruptedException if interrupted
     */
    public static List<RankResult> attention(boolean quick, int timeoutSeconds, int limitSeconds)
            throws IOException, InterruptedException {
        List<Child> children = start(quick ? "attention-quick" : "attention", 2, timeoutSeconds, limitSeconds);
        List<RankResult> results = new ArrayList<>();
        for (Child c : children) {
            results.add(c.await(limitSeconds));
        }
        return results;
    }

    /**
     * Runs the checks named in the arguments and prints a verdict; exit 0 when they pass or are skipped (with the
     * reason), 1 otherwise.
     *
     * @param args any of {@code collectives}, {@code kill}, {@code attention}, {@code attention-quick}
     *     (default: collectives and kill), optionally {@code --kill-timeout S} (default 20)
     * @throws Exception on launcher errors
     */
    public static void main(String[] args) throws Exception {
        String skip = skipReason();
        if (skip != null) {
            System.out.println("SKIP NCCL two-process checks: " + skip);
            return;
        }
        List<String> modes = new ArrayList<>();
        int killTimeout = 20;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--kill-timeout")) {
                killTimeout = Integer.parseInt(args[++i]);
            } else {
                modes.add(args[i]);
            }
        }
        if (modes.isEmpty()) {
            modes = List.of("collectives", "kill");
        }
        boolean ok = true;
        for (String mode : modes) {
            long t0 = System.nanoTime();
            boolean pass;
            if (mode.equals("collectives") || mode.startsWith("attention")) {
                List<RankResult> results = mode.equals("collectives") ? collectives(30, 45)
                        : attention(mode.equals("attention-quick"), 30, 70);
                pass = true;
                for (RankResult r : results) {
                    System.out.println("--- " + mode + " rank " + r.rank() + " exit " + r.exitCode() + " ("
                            + r.millis() + " ms)\n" + r.output());
                    pass &= r.exitCode() == 0;
                    if (mode.equals("collectives")) {
                        pass &= r.output().contains("NCCL_WORKER_OK rank " + r.rank());
                    }
                }
            } else if (mode.equals("kill")) {
                RankResult k = killOne(killTimeout, 30);
                System.out.println("--- kill check: rank 0 exit " + k.exitCode() + " " + k.millis()
                        + " ms after the kill (timeout " + killTimeout + " s)\n" + k.output());
                pass = k.exitCode() == NcclWorker.EXIT_GROUP_FAILED
                        && (k.output().contains("timed out") || k.output().contains("NCCL async error"))
                        && k.millis() < (killTimeout + 60) * 1000L;
            } else {
                throw new IllegalArgumentException("unknown check '" + mode + "'; allowed: collectives, kill,"
                        + " attention, attention-quick");
            }
            System.out.println("NCCL_CHECK " + mode + " " + (pass ? "PASSED" : "FAILED") + " in "
                    + (System.nanoTime() - t0) / 1_000_000 + " ms");
            ok &= pass;
        }
        System.out.println(ok ? "NCCL two-process checks PASSED" : "NCCL two-process checks FAILED");
        System.exit(ok ? 0 : 1);
    }

    private static List<Child> start(String mode, int world, int timeoutSeconds, int watchdogSeconds)
            throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<Child> children = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ProcessBuilder pb = RankProcess.builder(r, world, port,
                    List.of("-Dorg.apache.logging.log4j.level=INFO", "-Dflashdjl.watchdog.s=" + (watchdogSeconds + 5)),
                    NcclWorker.class, List.of(mode, Integer.toString(timeoutSeconds)));
            Map<String, String> env = pb.environment();
            env.putIfAbsent("NCCL_DEBUG", "WARN");
            pb.redirectErrorStream(true);
            children.add(new Child(r, pb.start()));
        }
        return children;
    }

    /** A child JVM and its output. */
    private static final class Child {
        final int rank;
        final Process process;
        final StringBuffer output = new StringBuffer();
        final CountDownLatch ready = new CountDownLatch(1);
        final Thread reader;
        final long start = System.nanoTime();

        Child(int rank, Process process) {
            this.rank = rank;
            this.process = process;
            this.reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                        StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = in.readLine()) != null) {
                        output.append(line).append('\n');
                        if (line.startsWith("READY rank")) {
                            ready.countDown();
                        }
                    }
                } catch (IOException e) {
                    output.append("[launcher: output closed: ").append(e).append("]\n");
                }
            }, "nccl-rank-" + rank + "-output");
            reader.setDaemon(true);
            reader.start();
        }

        RankResult await(int limitSeconds) throws InterruptedException {
            if (!process.waitFor(limitSeconds, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                reader.join(2000);
                return new RankResult(rank, -1, output + "[launcher: still running after " + limitSeconds
                        + " s, killed]\n", (System.nanoTime() - start) / 1_000_000);
            }
            reader.join(5000);
            return new RankResult(rank, process.exitValue(), output.toString(), (System.nanoTime() - start) / 1_000_000);
        }
    }
}
