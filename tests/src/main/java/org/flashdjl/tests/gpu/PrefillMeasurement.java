package org.flashdjl.tests.gpu;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One case of {@link ContextParallelPrefillBench} as rank 0 of a world reports it on a line of its output: the
 * time to first token of each timed prefill (the slowest rank's), the last position's top-1 token, and the file
 * (in the output directory) holding its last-position logits as little-endian float32.
 *
 * <pre>
 * CP_PREFILL world=2 method=ring length=32768 ttft_ms=812.500,809.125 top1=1234 logits=logits-w2-ring-L32768.f32
 * </pre>
 *
 * @param world the number of ranks (GPUs)
 * @param method {@code ring}, {@code ulysses}, or {@code single} on one rank
 * @param length the prompt length
 * @param ttftMs per timed prefill, the slowest rank's wall time, ms
 * @param top1 the argmax of the last position's logits
 * @param logitsFile the logits file's name in the output directory
 */
public record PrefillMeasurement(int world, String method, long length, double[] ttftMs, int top1,
        String logitsFile) {

    /** The line tag. */
    public static final String TAG = "CP_PREFILL";

    /**
     * Returns the file name of a case's logits.
     *
     * @param world the world size
     * @param method the method
     * @param length the prompt length
     * @return e.g. {@code logits-w2-ring-L32768.f32}
     */
    public static String fileName(int world, String method, long length) {
        return "logits-w" + world + "-" + method + "-L" + length + ".f32";
    }

    /** @return the median time to first token, ms */
    public double medianMs() {
        double[] s = ttftMs.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** @return the output line */
    public String toLine() {
        StringBuilder t = new StringBuilder();
        for (double x : ttftMs) {
            t.append(t.length() == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.3f", x));
        }
        return TAG + " world=" + world + " method=" + method + " length=" + length + " ttft_ms=" + t + " top1=" + top1
                + " logits=" + logitsFile;
    }

    /**
     * Parses an output line.
     *
     * @param line a line starting with {@link #TAG}
     * @return the measurement
     * @throws IllegalArgumentException naming what is missing or malformed
     */
    public static PrefillMeasurement parse(String line) {
        String[] parts = line.trim().split("\\s+");
        if (parts.length == 0 || !parts[0].equals(TAG)) {
            throw new IllegalArgumentException("not a " + TAG + " line: '" + line + "'");
        }
        Map<String, String> kv = new LinkedHashMap<>();
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("malformed field '" + parts[i] + "' in '" + line + "'");
            }
            kv.put(parts[i].substring(0, eq), parts[i].substring(eq + 1));
        }
        for (String k : new String[] {"world", "method", "length", "ttft_ms", "top1", "logits"}) {
            if (!kv.containsKey(k)) {
                throw new IllegalArgumentException("field " + k + " missing in '" + line + "'");
            }
        }
        try {
            double[] t = Arrays.stream(kv.get("ttft_ms").split(",")).mapToDouble(Double::parseDouble).toArray();
            return new PrefillMeasurement(Integer.parseInt(kv.get("world")), kv.get("method"),
                    Long.parseLong(kv.get("length")), t, Integer.parseInt(kv.get("top1")), kv.get("logits"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("malformed number in '" + line + "': " + e.getMessage(), e);
        }
    }
}
