package org.flashdjl.tests.gpu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The launcher's half of {@link ContextParallelPrefillBench}: every world's measurements put side by side
 * (scaling against the one-GPU run of the same prompt, the last-position logits against it), the fp16 budget, and
 * the verdict of the fault run. No GPU needed: unit-tested on the CPU.
 */
public final class PrefillBenchReport {

    /**
     * One row of the table.
     *
     * @param method ring, ulysses or single
     * @param length prompt tokens
     * @param world GPUs
     * @param ttftMs median time to first token (slowest rank), ms
     * @param speedup t(1 GPU) / t, NaN without a one-GPU run
     * @param efficiency speedup / world (1 = ideal), NaN without a one-GPU run
     * @param maxAbsDiff max |logits - one-GPU logits| of the last position, NaN without a one-GPU run
     * @param top1Same whether the top-1 token equals the one-GPU run's (true for the one-GPU row)
     */
    public record Row(String method, long length, int world, double ttftMs, double speedup, double efficiency,
            double maxAbsDiff, boolean top1Same) {}

    private PrefillBenchReport() {}

    /**
     * Builds the rows: per prompt length, the one-GPU run first, then each world and method.
     *
     * @param measurements every world's measurements
     * @param outDir where the logits files are
     * @return the rows
     * @throws IOException when a logits file cannot be read
     * @throws IllegalArgumentException when two logits files of a length differ in size
     */
    public static List<Row> rows(List<PrefillMeasurement> measurements, Path outDir) throws IOException {
        List<PrefillMeasurement> sorted = new ArrayList<>(measurements);
        sorted.sort(Comparator.comparingLong(PrefillMeasurement::length).thenComparingInt(PrefillMeasurement::world)
                .thenComparing(PrefillMeasurement::method));
        List<Row> rows = new ArrayList<>();
        for (PrefillMeasurement m : sorted) {
            PrefillMeasurement base = sorted.stream().filter(b -> b.world() == 1 && b.length() == m.length())
                    .findFirst().orElse(null);
            double t = m.medianMs();
            if (base == null) {
                rows.add(new Row(m.method(), m.length(), m.world(), t, Double.NaN, Double.NaN, Double.NaN, true));
                continue;
            }
            double t1 = base.medianMs();
            double diff = maxAbsDiff(readLogits(outDir.resolve(base.logitsFile())),
                    readLogits(outDir.resolve(m.logitsFile())), m.logitsFile());
            rows.add(new Row(m.method(), m.length(), m.world(), t, t1 / t, t1 / (t * m.world()), diff,
                    m.top1() == base.top1()));
        }
        return rows;
    }

    /**
     * Reads little-endian float32 values.
     *
     * @param file the file
     * @return the values
     * @throws IOException when it cannot be read
     */
    public static float[] readLogits(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        if (b.length % 4 != 0) {
            throw new IllegalArgumentException(file + " holds " + b.length + " bytes, not float32 values");
        }
        float[] f = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }

    /**
     * Writes little-endian float32 values.
     *
     * @param file the file
     * @param values the values
     * @throws IOException when it cannot be written
     */
    public static void writeLogits(Path file, float[] values) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        Files.write(file, buf.array());
    }

    static double maxAbsDiff(float[] a, float[] b, String what) {
        if (a.length != b.length) {
            throw new IllegalArgumentException(what + " holds " + b.length + " logits, the one-GPU run " + a.length);
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (Double.isNaN(d)) {
                return Double.NaN;
            }
            max = Math.max(max, d);
        }
        return max;
    }

    /**
     * Returns the fp16 budget of a checkpoint written by {@code hf_model_bench.py write}: twice transformers' own
     * max |fp16 logits - fp32 logits| ({@code max_abs_fp16_vs_fp32} in reference.json), the flash-attention rule.
     *
     * @param modelDir the checkpoint directory
     * @return the budget, or NaN when there is no such file or field
     * @throws IOException when the file exists but cannot be read
     */
    public static double budgetFrom(Path modelDir) throws IOException {
        Path ref = modelDir.resolve("reference.json");
        if (!Files.isRegularFile(ref)) {
            return Double.NaN;
        }
        Matcher m = Pattern.compile("\"max_abs_fp16_vs_fp32\"\\s*:\\s*([-+0-9.eE]+)").matcher(Files.readString(ref));
        return m.find() ? 2 * Double.parseDouble(m.group(1)) : Double.NaN;
    }

    /**
     * Returns whether every row is within the budget and keeps the one-GPU top-1 token.
     *
     * @param rows the rows
     * @param budget the budget, or NaN (then only the top-1 tokens and NaN-free logits are required)
     * @return true when the rows pass
     */
    public static boolean passed(List<Row> rows, double budget) {
        for (Row r : rows) {
            if (r.world() == 1 || Double.isNaN(r.speedup())) {
                continue;
            }
            if (Double.isNaN(r.maxAbsDiff()) || !r.top1Same() || (!Double.isNaN(budget) && r.maxAbsDiff() > budget)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Formats the rows as a markdown table.
     *
     * @param rows the rows
     * @param budget the fp16 budget, or NaN
     * @return the table, one line per row after the header
     */
    public static String markdown(List<Row> rows, double budget) {
        StringBuilder b = new StringBuilder();
        b.append("| method | tokens | GPUs | TTFT ms | speed-up | scaling efficiency | max |Δ logits| vs 1 GPU"
                + " | top-1 same | within budget (" + fmt("%.3g", budget) + ") |\n");
        b.append("|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            boolean within = !Double.isNaN(budget) && !Double.isNaN(r.maxAbsDiff()) && r.maxAbsDiff() <= budget;
            b.append(String.format(Locale.ROOT, "| %s | %d | %d | %.1f | %s | %s | %s | %s | %s |%n", r.method(),
                    r.length(), r.world(), r.ttftMs(), fmt("%.2fx", r.speedup()), Double.isNaN(r.efficiency())
                            ? "n/a" : String.format(Locale.ROOT, "%.0f%%", 100 * r.efficiency()),
                    fmt("%.3g", r.maxAbsDiff()), r.top1Same() ? "yes" : "NO",
                    r.world() == 1 ? "(baseline)" : Double.isNaN(budget) ? "n/a" : within ? "yes" : "NO"));
        }
        return b.toString();
    }

    /**
     * Formats a row as one JSON line.
     *
     * @param r the row
     * @param device the device description
     * @return the JSON object
     */
    public static String json(Row r, String device) {
        return String.format(Locale.ROOT, "{\"bench\":\"cp_prefill\",\"device\":\"%s\",\"method\":\"%s\","
                + "\"tokens\":%d,\"gpus\":%d,\"ttft_ms\":%.3f,\"speedup\":%s,\"efficiency\":%s,"
                + "\"max_abs_diff_vs_1gpu\":%s,\"top1_same\":%b}", device.replace("\"", "'"), r.method(), r.length(),
                r.world(), r.ttftMs(), num(r.speedup()), num(r.efficiency()), num(r.maxAbsDiff()), r.top1Same());
    }

    private static String num(double x) {
        return Double.isNaN(x) ? "null" : String.format(Locale.ROOT, "%.6g", x);
    }

    private static String fmt(String f, double x) {
        return Double.isNaN(x) ? "n/a" : String.format(Locale.ROOT, f, x);
    }

    // ------------------------------------------------------------------------------------------------- faults

    /**
     * A survivor of the fault run.
     *
     * @param rank its rank
     * @param exitCode its exit status (-1: still running at the limit, killed)
     * @param output what it printed
     * @param millisAfterKill when it ended, ms after the victim was killed
     */
    public record Survivor(int rank, int exitCode, String output, long millisAfterKill) {}

    /**
     * The fault run's verdict.
     *
     * @param passed every survivor ended with the group-failure status and a timeout error within the limit
     * @param namedBy the survivors whose error names the dead rank
     * @param lines one line per survivor, then the verdict
     */
    public record FaultVerdict(boolean passed, List<Integer> namedBy, List<String> lines) {}

    /**
     * Judges the fault run: each survivor must exit with {@link NcclWorker#EXIT_GROUP_FAILED} within the group
     * timeout plus {@code slackSeconds} of the kill, its {@code CP_GROUP_FAILED} line saying it timed out (or that
     * the group was aborted after a timeout). Whether that line names the dead rank is reported per survivor.
     *
     * @param victim the killed rank
     * @param timeoutSeconds the group timeout
     * @param slackSeconds the allowance beyond the timeout
     * @param survivors the other ranks' outcomes
     * @return the verdict
     */
    public static FaultVerdict judgeFault(int victim, int timeoutSeconds, int slackSeconds, List<Survivor> survivors) {
        boolean ok = !survivors.isEmpty();
        List<Integer> named = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        Pattern names = Pattern.compile("\\b(rank|from|to) " + victim + "\\b");
        for (Survivor s : survivors) {
            String failure = failureLine(s.output());
            boolean inTime = s.exitCode() == NcclWorker.EXIT_GROUP_FAILED
                    && s.millisAfterKill() <= (timeoutSeconds + slackSeconds) * 1000L;
            boolean timedOut = failure != null && (failure.contains("timed out") || failure.contains("NCCL async"
                    + " error") || failure.contains("aborted"));
            String cause = failure == null ? "" : failure.substring(failure.indexOf(':') + 1).trim();
            boolean namesVictim = failure != null && names.matcher(cause.replaceFirst("^\\S+ on rank \\d+", ""))
                    .find();
            if (namesVictim) {
                named.add(s.rank());
            }
            ok &= inTime && timedOut;
            lines.add(String.format(Locale.ROOT, "rank %d: exit %d, %d ms after the kill (limit %d s)%s%s: %s",
                    s.rank(), s.exitCode(), s.millisAfterKill(), timeoutSeconds + slackSeconds,
                    timedOut ? "" : ", NO timeout error", namesVictim ? ", names rank " + victim : ", does not name rank "
                            + victim, failure == null ? "(no CP_GROUP_FAILED line)" : cause));
        }
        lines.add("CP_FAULT " + (ok ? "PASSED" : "FAILED") + ": rank " + victim + " killed; " + survivors.size()
                + " survivors ended with a timeout error in time: " + ok + "; the dead rank named by ranks " + named);
        return new FaultVerdict(ok, named, lines);
    }

    /** The line a rank prints when its group fails. */
    static final String GROUP_FAILED = "CP_GROUP_FAILED";

    private static String failureLine(String output) {
        for (String line : output.split("\n")) {
            if (line.startsWith(GROUP_FAILED)) {
                return line;
            }
        }
        return null;
    }
}
