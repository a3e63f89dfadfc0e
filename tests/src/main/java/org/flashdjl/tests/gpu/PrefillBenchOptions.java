package org.flashdjl.tests.gpu;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The options of {@link ContextParallelPrefillBench}, parsed and checked (a bad value names the option, the value
 * and what is allowed).
 *
 * @param model the checkpoint directory ({@code --model}, required)
 * @param worlds the world sizes to run, ascending ({@code --worlds}, default 1,2,4; 1 is the baseline)
 * @param methods {@code ring} and/or {@code ulysses} ({@code --methods}, default both)
 * @param lengths prompt lengths in tokens ({@code --lengths}, default 32768,131072)
 * @param reps timed prefills per case ({@code --reps}, default 3; the median is reported)
 * @param warmup untimed prefills first ({@code --warmup}, default 1)
 * @param dtype {@code float16} or {@code float32} ({@code --dtype}, default float16)
 * @param backend the local attention backend ({@code --backend}, default auto)
 * @param window a sliding window for every layer, 0 = the checkpoint's ({@code --window})
 * @param sinks sink tokens with the window ({@code --sinks}, default 0)
 * @param timeoutSeconds the process group's timeout ({@code --timeout-s}, default 300)
 * @param limitSeconds how long the launcher waits for one world's ranks ({@code --limit-s}, default 540)
 * @param out where logits files and {@code cp-prefill.jsonl} go ({@code --out}, default cp-prefill-out)
 * @param budget the max |logits - 1 GPU| allowed, or NaN: twice the checkpoint's {@code max_abs_fp16_vs_fp32}
 *     from its reference.json when present ({@code --budget})
 * @param seed the prompt's seed ({@code --seed}, default 1)
 * @param local ranks as threads of this JVM over {@code LocalProcessGroup} on the CPU ({@code --local})
 * @param killRank the fault run: the rank killed mid-prefill, or -1 ({@code --kill-rank})
 * @param killAfterLayer the layer after which it is killed ({@code --kill-after-layer}, default 2)
 * @param child this process is one rank started by the launcher ({@code --child}, internal)
 */
public record PrefillBenchOptions(Path model, int[] worlds, List<String> methods, long[] lengths, int reps,
        int warmup, String dtype, String backend, int window, int sinks, int timeoutSeconds, int limitSeconds,
        Path out, double budget, long seed, boolean local, int killRank, int killAfterLayer, boolean child) {

    private static final Set<String> FLAGS = Set.of("local", "child");
    private static final List<String> VALUED = List.of("model", "worlds", "methods", "lengths", "reps", "warmup",
            "dtype", "backend", "window", "sinks", "timeout-s", "limit-s", "out", "budget", "seed", "kill-rank",
            "kill-after-layer");

    /**
     * Parses the command line.
     *
     * @param args {@code --name value} pairs and the flags {@code --local}, {@code --child}
     * @return the options
     * @throws IllegalArgumentException naming the option, the value and what is allowed
     */
    public static PrefillBenchOptions parse(String... args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "'; options are --name value (" + String
                        .join(", ", VALUED) + ") and the flags --local, --child");
            }
            String name = a.substring(2);
            if (FLAGS.contains(name)) {
                m.put(name, "true");
            } else if (VALUED.contains(name)) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option --" + name + " needs a value");
                }
                m.put(name, args[++i]);
            } else {
                throw new IllegalArgumentException("unknown option --" + name + "; allowed: --" + String.join(", --",
                        VALUED) + ", --local, --child");
            }
        }
        if (!m.containsKey("model")) {
            throw new IllegalArgumentException("--model DIR is required (a Llama checkpoint: tests/gpu/hf_model_bench.py"
                    + " write DIR makes a Llama-3.2-1B-shaped one)");
        }
        int[] worlds = ints(m, "worlds", "1,2,4", 1);
        for (int i = 1; i < worlds.length; i++) {
            if (worlds[i] <= worlds[i - 1]) {
                throw new IllegalArgumentException("--worlds must be ascending without repeats, got "
                        + m.get("worlds"));
            }
        }
        List<String> methods = new ArrayList<>();
        for (String s : m.getOrDefault("methods", "ring,ulysses").split(",")) {
            String meth = s.trim().toLowerCase(Locale.ROOT);
            if (!meth.equals("ring") && !meth.equals("ulysses")) {
                throw new IllegalArgumentException("--methods takes ring and/or ulysses, got '" + s + "'");
            }
            if (!methods.contains(meth)) {
                methods.add(meth);
            }
        }
        long[] lengths = Arrays.stream(ints(m, "lengths", "32768,131072", 1)).asLongStream().toArray();
        String dtype = m.getOrDefault("dtype", "float16").toLowerCase(Locale.ROOT);
        if (!dtype.equals("float16") && !dtype.equals("float32")) {
            throw new IllegalArgumentException("--dtype takes float16 or float32, got '" + m.get("dtype") + "'");
        }
        double budget = Double.NaN;
        if (m.containsKey("budget")) {
            try {
                budget = Double.parseDouble(m.get("budget"));
            } catch (NumberFormatException e) {
                budget = -1;
            }
            if (!(budget > 0) || Double.isInfinite(budget)) {
                throw new IllegalArgumentException("--budget must be a finite number > 0, got '" + m.get("budget")
                        + "'");
            }
        }
        int killRank = one(m, "kill-rank", "-1", -1);
        boolean local = m.containsKey("local");
        if (killRank >= 0) {
            int world = worlds[worlds.length - 1];
            if (local) {
                throw new IllegalArgumentException("--kill-rank kills a rank's process: it runs with one process"
                        + " per GPU, not with --local");
            }
            if (world < 2 || killRank >= world) {
                throw new IllegalArgumentException("--kill-rank " + killRank + " must name a rank of the largest"
                        + " world (" + world + "): 0.." + (world - 1) + ", and that world needs >= 2 ranks");
            }
        }
        return new PrefillBenchOptions(Paths.get(m.get("model")), worlds, methods, lengths,
                one(m, "reps", "3", 1), one(m, "warmup", "1", 0), dtype, m.getOrDefault("backend", "auto"),
                one(m, "window", "0", 0), one(m, "sinks", "0", 0), one(m, "timeout-s", "300", 1),
                one(m, "limit-s", "540", 1), Paths.get(m.getOrDefault("out", "cp-prefill-out")), budget,
                one(m, "seed", "1", 0), local, killRank, one(m, "kill-after-layer", "2", 0), m.containsKey("child"));
    }

    private static int one(Map<String, String> m, String name, String def, int min) {
        int[] v = ints(m, name, def, min);
        if (v.length != 1) {
            throw new IllegalArgumentException("--" + name + " takes one number, got '" + m.get(name) + "'");
        }
        return v[0];
    }

    // A comma-separated list of integers >= min (a single value is a list of one).
    private static int[] ints(Map<String, String> m, String name, String def, int min) {
        String raw = m.getOrDefault(name, def);
        String[] parts = raw.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + name + " takes " + (def.contains(",") ? "comma-separated "
                        + "integers" : "an integer") + " >= " + min + ", got '" + raw + "'");
            }
            if (out[i] < min) {
                throw new IllegalArgumentException("--" + name + " values must be >= " + min + ", got '" + raw + "'");
            }
        }
        return out;
    }

    /**
     * Returns the arguments a rank process gets: these options with {@code --child}, one world's worth.
     *
     * @return the child's command line
     */
    public List<String> childArgs() {
        List<String> a = new ArrayList<>(List.of("--model", model.toString(), "--methods", String.join(",", methods),
                "--lengths", join(Arrays.stream(lengths).mapToInt(Math::toIntExact).toArray()), "--reps",
                Integer.toString(reps), "--warmup", Integer.toString(warmup), "--dtype", dtype, "--backend", backend,
                "--window", Integer.toString(window), "--sinks", Integer.toString(sinks), "--timeout-s",
                Integer.toString(timeoutSeconds), "--out", out.toString(), "--seed", Long.toString(seed),
                "--kill-after-layer", Integer.toString(killAfterLayer), "--child"));
        if (!Double.isNaN(budget)) {
            a.addAll(List.of("--budget", Double.toString(budget)));
        }
        if (killRank >= 0) {
            a.addAll(List.of("--worlds", Integer.toString(worlds[worlds.length - 1]), "--kill-rank",
                    Integer.toString(killRank)));
        }
        return a;
    }

    private static String join(int[] v) {
        StringBuilder b = new StringBuilder();
        for (int x : v) {
            b.append(b.length() == 0 ? "" : ",").append(x);
        }
        return b.toString();
    }

    /** @return the world of the fault run: the largest one */
    public int faultWorld() {
        return worlds[worlds.length - 1];
    }
}
