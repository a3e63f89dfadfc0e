package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.ContextParallelPrefill;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.ops.parallel.group.LocalProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.nccl.Distributed;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Long-context prefill of the model across GPUs ({@link ContextParallelPrefill}): time to first token of a
 * Llama checkpoint ({@code tests/gpu/hf_model_bench.py write DIR}: Llama-3.2-1B-shaped) for long prompts on 1, 2 and
 * 4 GPUs with ring (zigzag) and Ulysses attention, the scaling efficiency, and the last-position logits of every
 * run against the one-GPU run within the fp16 budget; or the fault run (a rank killed mid-prefill).
 *
 * <pre>
 * java -cp &lt;jars&gt; org.flashdjl.tests.gpu.ContextParallelPrefillBench --model DIR [--worlds 1,2,4]
 *     [--methods ring,ulysses] [--lengths 32768,131072] [--reps 3] [--warmup 1] [--dtype float16] [--backend auto]
 *     [--window N --sinks N] [--timeout-s 300] [--limit-s 540] [--out DIR] [--budget X] [--seed 1] [--local]
 * ... --kill-rank R [--kill-after-layer 2] [--timeout-s 30]      # the fault run on the largest world
 * </pre>
 *
 * <p>The launcher (this main) starts, per world size, one child JVM per GPU ({@link RankProcess}: the torchrun
 * environment, {@code NCCL_NVLS_ENABLE=0}, a watchdog), each rank loading the checkpoint on its GPU and running
 * {@link #runRank} over {@link Distributed#init()} (NCCL; one rank: a plain prefill through the same code). Per
 * case, after warm-ups, each timed prefill starts after a barrier and ends when the last logits are on the host;
 * the slowest rank's time counts, the median is reported. Rank 0 writes the last-position logits to {@code --out}
 * and prints a {@link PrefillMeasurement} line; the launcher puts the worlds side by side ({@link
 * PrefillBenchReport}): a markdown table on stdout, JSON lines in {@code OUT/cp-prefill.jsonl}, exit 1 when a
 * world failed or a run's logits leave the budget or change the top-1 token. {@code --local}: ranks as threads
 * over {@code LocalProcessGroup} on the CPU in this JVM (a check of the whole flow without GPUs).
 *
 * <p>The fault run ({@code --kill-rank R}): the largest world runs prefills of the first method and length in a
 * loop, rank R printing its progress; R is killed (SIGKILL) when it reports layer {@code --kill-after-layer} of
 * its second prefill, and every other rank must exit with status 3 and a timeout error within the group timeout
 * ({@code --timeout-s}) plus 60 s ({@link PrefillBenchReport#judgeFault}).
 */
public final class ContextParallelPrefillBench {

    private static final String LAYER = "CP_LAYER";
    private static final int FAULT_SLACK_S = 60;

    private ContextParallelPrefillBench() {}

    /**
     * Runs the launcher, or one rank with {@code --child}.
     *
     * @param args see the class comment
     */
    public static void main(String[] args) {
        PrefillBenchOptions o;
        try {
            o = PrefillBenchOptions.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(2);
            return;
        }
        int code;
        try {
            code = o.child() ? child(o) : o.killRank() >= 0 ? fault(o) : launch(o, System.out);
        } catch (Exception e) {
            System.err.println("error: " + e);
            e.printStackTrace();
            code = 1;
        }
        System.out.flush();
        Runtime.getRuntime().halt(code); // non-daemon native threads (NCCL, CUDA) must not keep a rank alive
    }

    // ------------------------------------------------------------------------------------------- one rank

    /**
     * One rank's benchmark: loads the checkpoint on {@code device}, then per method and prompt length warm-ups and
     * timed prefills; rank 0 writes each case's last-position logits to {@code o.out()} and reports a measurement.
     * With one rank the method is {@code single}.
     *
     * @param g this rank's group
     * @param device this rank's device
     * @param o the options
     * @param out where rank 0 prints its measurement lines
     * @param exitOnGroupFailure a rank process: on a process-group failure print it and exit at once (status 3),
     *     without closing anything (a device synchronisation after a failed NCCL exchange must not delay the exit)
     * @return rank 0's measurements (empty on the other ranks)
     * @throws IOException when the checkpoint or a logits file fails
     */
    public static List<PrefillMeasurement> runRank(ProcessGroup g, Device device, PrefillBenchOptions o,
            PrintStream out, boolean exitOnGroupFailure) throws IOException {
        int w = g.size();
        int rank = g.rank();
        List<PrefillMeasurement> results = new ArrayList<>();
        DataType dtype = o.dtype().equals("float16") ? DataType.FLOAT16 : DataType.FLOAT32;
        try (NDManager manager = NDManager.newBaseManager(device)) {
            LlamaModel model = LlamaLoader.load(o.model(), manager, attentionOptions(o), dtype);
            List<String> methods = w == 1 ? List.of("single") : o.methods();
            for (String method : methods) {
                for (long length : o.lengths()) {
                    int[] prompt = prompt(o.seed(), (int) length, model.getConfig().getVocabSize());
                    try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                            .optMethod(w == 1 ? "ring" : method).build()) {
                        long[] nanos = new long[o.reps()];
                        float[] last = null;
                        for (int it = -o.warmup(); it < o.reps(); it++) {
                            g.barrier();
                            long t0 = System.nanoTime();
                            try (NDManager step = manager.newSubManager();
                                    ContextParallelPrefill.Result r = p.prefill(step, prompt)) {
                                last = r.getLastLogits().toFloatArray(); // on the host: the device work is done
                            } catch (RuntimeException e) {
                                if (exitOnGroupFailure) {
                                    exitIfGroupFailed(e, rank);
                                }
                                throw e;
                            }
                            if (it >= 0) {
                                nanos[it] = System.nanoTime() - t0;
                            }
                        }
                        long[] all = g.allGatherLongs(nanos);
                        if (rank == 0) {
                            double[] ms = new double[o.reps()];
                            for (int i = 0; i < ms.length; i++) {
                                long slowest = 0;
                                for (int r = 0; r < w; r++) {
                                    slowest = Math.max(slowest, all[r * o.reps() + i]);
                                }
                                ms[i] = slowest / 1e6;
                            }
                            String file = PrefillMeasurement.fileName(w, method, length);
                            Files.createDirectories(o.out());
                            PrefillBenchReport.writeLogits(o.out().resolve(file), last);
                            PrefillMeasurement m = new PrefillMeasurement(w, method, length, ms, argMax(last), file);
                            results.add(m);
                            out.println(m.toLine());
                            out.flush();
                        }
                    }
                }
            }
        }
        return results;
    }

    private static AttentionOptions attentionOptions(PrefillBenchOptions o) {
        return AttentionOptions.builder().optBackend(o.backend()).optSlidingWindow(o.window())
                .optSinkTokens(o.sinks()).build();
    }

    /**
     * Returns the benchmark's prompt: ids in [3, min(vocab, 128000)) from a seeded generator (the same on every
     * rank and in every world).
     *
     * @param seed the seed
     * @param length the number of tokens
     * @param vocab the vocabulary size
     * @return the ids
     */
    static int[] prompt(long seed, int length, int vocab) {
        Random r = new Random(seed);
        int hi = Math.min(vocab, 128000);
        int[] ids = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = 3 + r.nextInt(hi - 3);
        }
        return ids;
    }

    private static int argMax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    // A rank process: Distributed.init from the launcher's environment, then the benchmark or the fault loop.
    private static int child(PrefillBenchOptions o) {
        Watchdog.start("ContextParallelPrefillBench rank " + System.getenv("RANK"));
        Distributed.Builder b = Distributed.builder().optTimeout(Duration.ofSeconds(o.timeoutSeconds()));
        int rank = -1;
        try (ProcessGroup g = b.init()) {
            rank = g.rank();
            Device device = Device.gpu(b.resolve().device());
            if (o.killRank() >= 0) {
                faultLoop(g, device, o);
            } else {
                runRank(g, device, o, System.out, true);
            }
            return 0;
        } catch (Exception | Error e) {
            ProcessGroupException groupFailure = groupFailure(e);
            if (groupFailure != null) {
                System.out.println(PrefillBenchReport.GROUP_FAILED + " rank " + rank + ": "
                        + oneLine(groupFailure.getMessage()));
                e.printStackTrace(System.out);
                return NcclWorker.EXIT_GROUP_FAILED;
            }
            System.out.println("CP_RANK_ERROR rank " + rank + ": " + e);
            e.printStackTrace(System.out);
            return 1;
        }
    }

    // A rank process whose group failed reports it and exits now (status 3), closing nothing.
    private static void exitIfGroupFailed(Throwable e, int rank) {
        ProcessGroupException failure = groupFailure(e);
        if (failure != null) {
            System.out.println(PrefillBenchReport.GROUP_FAILED + " rank " + rank + ": "
                    + oneLine(failure.getMessage()));
            e.printStackTrace(System.out);
            System.out.flush();
            Runtime.getRuntime().halt(NcclWorker.EXIT_GROUP_FAILED);
        }
    }

    // The process-group failure behind an exception (itself or a cause), or null.
    private static ProcessGroupException groupFailure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ProcessGroupException) {
                return (ProcessGroupException) t;
            }
        }
        return null;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ');
    }

    // The fault run's rank: prefills in a loop, every layer reported, until the group fails (or 1000 prefills).
    private static void faultLoop(ProcessGroup g, Device device, PrefillBenchOptions o) throws IOException {
        DataType dtype = o.dtype().equals("float16") ? DataType.FLOAT16 : DataType.FLOAT32;
        try (NDManager manager = NDManager.newBaseManager(device)) {
            LlamaModel model = LlamaLoader.load(o.model(), manager, attentionOptions(o), dtype);
            int[] prompt = prompt(o.seed(), (int) o.lengths()[0], model.getConfig().getVocabSize());
            int[] run = {0};
            try (ContextParallelPrefill p = ContextParallelPrefill.builder().setModel(model).setGroup(g)
                    .optMethod(o.methods().get(0)).optLayerListener(layer -> {
                        System.out.println(LAYER + " rank " + g.rank() + " prefill " + run[0] + " layer " + layer);
                        System.out.flush();
                    }).build()) {
                for (; run[0] < 1000; run[0]++) {
                    try (NDManager step = manager.newSubManager();
                            ContextParallelPrefill.Result r = p.prefill(step, prompt)) {
                        r.getLastLogits().toFloatArray();
                    } catch (RuntimeException e) {
                        exitIfGroupFailed(e, g.rank());
                        throw e;
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------- launcher

    /**
     * Runs every world and reports.
     *
     * @param o the options
     * @param out where the progress, the table and the verdict go
     * @return 0 when every world ran and every run is within the budget with the one-GPU top-1 token, else 1
     * @throws Exception when a world cannot be started
     */
    static int launch(PrefillBenchOptions o, PrintStream out) throws Exception {
        Files.createDirectories(o.out());
        double budget = !Double.isNaN(o.budget()) ? o.budget() : PrefillBenchReport.budgetFrom(o.model());
        int gpus = o.local() ? Integer.MAX_VALUE : NcclProcessGroup.deviceCount();
        out.println("# context-parallel prefill: " + o.model() + ", " + o.dtype() + ", backend " + o.backend()
                + (o.window() > 0 ? ", window " + o.window() + " sinks " + o.sinks() : "") + ", worlds "
                + java.util.Arrays.toString(o.worlds()) + (o.local() ? " (threads on the CPU)" : " (" + gpus
                        + " GPUs visible)") + ", methods " + o.methods() + ", lengths "
                + java.util.Arrays.toString(o.lengths()) + ", median of " + o.reps() + " after " + o.warmup()
                + " warm-up(s), slowest rank");
        List<PrefillMeasurement> all = new ArrayList<>();
        boolean ok = true;
        for (int w : o.worlds()) {
            if (w > gpus) {
                out.println("world " + w + " skipped: " + gpus + " GPU(s) visible");
                continue;
            }
            long t0 = System.nanoTime();
            try {
                List<PrefillMeasurement> got = o.local() ? runLocal(w, o, out) : spawnWorld(w, o, out);
                int expected = (w == 1 ? 1 : o.methods().size()) * o.lengths().length;
                if (got.size() != expected) {
                    throw new IllegalStateException("world " + w + " reported " + got.size() + " of " + expected
                            + " cases");
                }
                all.addAll(got);
                out.printf(Locale.ROOT, "world %d done in %.1f s%n", w, (System.nanoTime() - t0) / 1e9);
            } catch (Exception e) {
                ok = false;
                out.println("world " + w + " FAILED: " + e.getMessage());
            }
        }
        if (all.isEmpty()) {
            out.println("CP_PREFILL_BENCH FAILED: no world ran");
            return 1;
        }
        List<PrefillBenchReport.Row> rows = PrefillBenchReport.rows(all, o.out());
        out.println();
        out.print(PrefillBenchReport.markdown(rows, budget));
        String device = o.local() ? "cpu" : gpuName();
        try (PrintWriter json = new PrintWriter(Files.newBufferedWriter(o.out().resolve("cp-prefill.jsonl"),
                StandardCharsets.UTF_8))) {
            for (PrefillBenchReport.Row r : rows) {
                json.println(PrefillBenchReport.json(r, device));
            }
        }
        boolean pass = ok && PrefillBenchReport.passed(rows, budget);
        out.println("CP_PREFILL_BENCH " + (pass ? "PASSED" : "FAILED") + " (logits budget "
                + (Double.isNaN(budget) ? "n/a: no --budget and no reference.json" : String.format(Locale.ROOT,
                        "%.3g", budget)) + "; results in " + o.out().toAbsolutePath() + ")");
        return pass ? 0 : 1;
    }

    private static String gpuName() {
        try {
            return org.flashdjl.ops.cuda.CudaRuntime.getDeviceInfo(0).name();
        } catch (RuntimeException e) {
            return "gpu";
        }
    }

    // One world as threads of this JVM over LocalProcessGroup on the CPU.
    private static List<PrefillMeasurement> runLocal(int w, PrefillBenchOptions o, PrintStream out)
            throws Exception {
        List<LocalProcessGroup> groups = LocalProcessGroup.create(w, Duration.ofSeconds(o.timeoutSeconds()));
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try {
            List<Future<List<PrefillMeasurement>>> futures = new ArrayList<>();
            for (LocalProcessGroup g : groups) {
                futures.add(pool.submit(() -> {
                    try {
                        return runRank(g, Device.cpu(), o, out, false);
                    } catch (Throwable t) {
                        g.abort(t);
                        throw t;
                    }
                }));
            }
            List<PrefillMeasurement> rank0 = null;
            for (Future<List<PrefillMeasurement>> f : futures) {
                List<PrefillMeasurement> r = f.get(o.limitSeconds(), TimeUnit.SECONDS);
                rank0 = rank0 == null ? r : rank0;
            }
            return rank0;
        } catch (ExecutionException e) {
            throw new IllegalStateException("a rank failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("world " + w + " still running after " + o.limitSeconds() + " s", e);
        } finally {
            pool.shutdownNow();
            groups.forEach(LocalProcessGroup::close);
        }
    }

    // One world as child JVMs, one per GPU; rank 0's measurement lines are the result.
    private static List<PrefillMeasurement> spawnWorld(int w, PrefillBenchOptions o, PrintStream out)
            throws Exception {
        List<Rank> ranks = start(w, o, o.limitSeconds());
        List<PrefillMeasurement> got = new ArrayList<>();
        StringBuilder failures = new StringBuilder();
        for (Rank r : ranks) {
            int code = r.await(o.limitSeconds());
            if (code != 0) {
                failures.append(failures.length() == 0 ? "" : "; ").append("rank ").append(r.rank).append(" exit ")
                        .append(code).append(" (log ").append(r.log).append(")");
            }
        }
        for (String line : ranks.get(0).lines) {
            if (line.startsWith(PrefillMeasurement.TAG + " ")) {
                got.add(PrefillMeasurement.parse(line));
            }
        }
        if (failures.length() > 0) {
            for (Rank r : ranks) {
                for (String line : r.lines) {
                    if (line.startsWith(PrefillBenchReport.GROUP_FAILED) || line.startsWith("CP_RANK_ERROR")) {
                        out.println("  " + line);
                    }
                }
            }
            throw new IllegalStateException(failures.toString());
        }
        return got;
    }

    // The fault run: the largest world, rank killRank killed after it reports layer killAfterLayer of prefill 1.
    private static int fault(PrefillBenchOptions o) throws Exception {
        int w = o.faultWorld();
        int victim = o.killRank();
        int gpus = NcclProcessGroup.deviceCount();
        if (w > gpus) {
            System.out.println("CP_FAULT SKIPPED: world " + w + " needs " + w + " GPUs, " + gpus + " visible");
            return 0;
        }
        Files.createDirectories(o.out());
        int limit = o.limitSeconds() + o.timeoutSeconds() + FAULT_SLACK_S;
        List<Rank> ranks = start(w, o, limit);
        String trigger = LAYER + " rank " + victim + " prefill 1 layer " + o.killAfterLayer();
        Rank v = ranks.get(victim);
        try {
            if (!v.seen(trigger, o.limitSeconds())) {
                System.out.println("CP_FAULT FAILED: rank " + victim + " never reported '" + trigger + "' within "
                        + o.limitSeconds() + " s (log " + v.log + ")");
                return 1;
            }
            v.process.destroyForcibly();
            long killed = System.nanoTime();
            v.process.waitFor(30, TimeUnit.SECONDS);
            System.out.println("killed rank " + victim + " after it reported '" + trigger + "'");
            List<PrefillBenchReport.Survivor> survivors = new ArrayList<>();
            for (Rank r : ranks) {
                if (r.rank != victim) {
                    int code = r.await(o.timeoutSeconds() + FAULT_SLACK_S + 30);
                    survivors.add(new PrefillBenchReport.Survivor(r.rank, code, String.join("\n", r.lines),
                            (r.endNanos - killed) / 1_000_000));
                }
            }
            PrefillBenchReport.FaultVerdict verdict = PrefillBenchReport.judgeFault(victim, o.timeoutSeconds(),
                    FAULT_SLACK_S, survivors);
            verdict.lines().forEach(System.out::println);
            return verdict.passed() ? 0 : 1;
        } finally {
            for (Rank r : ranks) {
                r.process.destroyForcibly();
            }
        }
    }

    private static List<Rank> start(int w, PrefillBenchOptions o, int watchdogSeconds) throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<String> jvm = new ArrayList<>();
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if ((a.startsWith("-D") && !a.startsWith("-Dflashdjl.watchdog.s")) || a.startsWith("-X")
                    || a.startsWith("--enable-native-access")) {
                jvm.add(a);
            }
        }
        jvm.add("-Dflashdjl.watchdog.s=" + (watchdogSeconds + 30));
        Path logs = Files.createDirectories(o.out().resolve("logs"));
        List<Rank> ranks = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            ProcessBuilder pb = RankProcess.builder(r, w, port, jvm, ContextParallelPrefillBench.class,
                    o.childArgs());
            pb.redirectErrorStream(true);
            Path log = logs.resolve((o.killRank() >= 0 ? "fault-" : "") + "w" + w + "-rank" + r + ".log");
            ranks.add(new Rank(r, pb.start(), log, r == 0 && o.killRank() < 0 ? System.out : null));
        }
        return ranks;
    }

    /** A child JVM: its output kept (and written to its log, rank 0's relayed), its end time recorded. */
    private static final class Rank {
        final int rank;
        final Process process;
        final Path log;
        final List<String> lines = Collections.synchronizedList(new ArrayList<>());
        final Thread reader;
        final CountDownLatch closed = new CountDownLatch(1);
        final java.util.concurrent.CompletableFuture<Void> ended;
        volatile long endNanos; // when the process ended
        private final Object seenLock = new Object();

        Rank(int rank, Process process, Path log, PrintStream relay) throws IOException {
            this.rank = rank;
            this.process = process;
            this.log = log;
            PrintWriter file = new PrintWriter(Files.newBufferedWriter(log, StandardCharsets.UTF_8), true);
            this.ended = process.onExit().thenRun(() -> endNanos = System.nanoTime());
            this.reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                        StandardCharsets.UTF_8)); file) {
                    String line;
                    while ((line = in.readLine()) != null) {
                        lines.add(line);
                        file.println(line);
                        if (relay != null && (line.startsWith("CP_") && !line.startsWith(LAYER)
                                || line.toLowerCase(Locale.ROOT).contains("error")
                                || line.contains("Exception"))) {
                            relay.println("  [rank " + rank + "] " + line);
                        }
                        synchronized (seenLock) {
                            seenLock.notifyAll();
                        }
                    }
                } catch (IOException e) {
                    lines.add("[launcher: output closed: " + e + "]");
                } finally {
                    closed.countDown();
                    synchronized (seenLock) {
                        seenLock.notifyAll();
                    }
                }
            }, "cp-prefill-rank-" + rank + "-output");
            reader.setDaemon(true);
            reader.start();
        }

        // Waits until a line equal to `line` appears (true) or the output ends or the time is up (false).
        boolean seen(String line, int seconds) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            synchronized (seenLock) {
                while (true) {
                    if (lines.contains(line)) {
                        return true;
                    }
                    long left = deadline - System.nanoTime();
                    if (left <= 0 || closed.getCount() == 0) {
                        return lines.contains(line);
                    }
                    TimeUnit.NANOSECONDS.timedWait(seenLock, Math.min(left, TimeUnit.MILLISECONDS.toNanos(200)));
                }
            }
        }

        // The exit code, or -1 after killing a child still running at the limit.
        int await(int seconds) throws InterruptedException {
            boolean done = process.waitFor(seconds, TimeUnit.SECONDS);
            if (!done) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                reader.join(2000);
                lines.add("[launcher: still running after " + seconds + " s, killed]");
                return -1;
            }
            reader.join(5000);
            ended.join();
            return process.exitValue();
        }
    }
}
