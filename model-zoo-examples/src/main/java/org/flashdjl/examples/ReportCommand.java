package org.flashdjl.examples;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.engine.CapabilityReport;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

import java.io.PrintStream;
import java.util.Locale;

/**
 * {@code flashdjl report}: prints what this machine can run (engine, devices, every registered backend) and runs
 * every available dense attention backend on one sample against a float64 reference.
 *
 * <pre>
 * flashdjl report [--device cpu|gpu] [--batch 2] [--heads 8] [--kv-heads 2] [--seq 512] [--dim 64] [--no-causal]
 * </pre>
 */
final class ReportCommand {

    private ReportCommand() {}

    static int run(String[] args, PrintStream out) {
        ReportOptions o;
        try {
            o = ReportOptions.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("error: " + e.getMessage());
            out.println(ReportOptions.USAGE);
            return 2;
        }
        if (o.help) {
            out.println(ReportOptions.USAGE);
            return 0;
        }
        CapabilityReport report = CapabilityReport.probe();
        out.println("== FlashDJL capability report ==");
        out.print(report.format());
        out.println();
        return sample(o, report, out);
    }

    private static int sample(ReportOptions o, CapabilityReport report, PrintStream out) {
        Device device = o.device.equals("gpu") ? Device.gpu() : Device.cpu();
        if (device.isGpu() && report.getGpuCount() == 0) {
            out.println("error: --device gpu asked for, but the engine sees no GPU");
            return 2;
        }
        AttentionSpec spec = AttentionSpec.builder().optCausal(o.causal).optReturnLse(true).build();
        out.printf(Locale.ROOT, "== sample: q [%d, %d, %d, %d], k/v [%d, %d, %d, %d], fp32, %s, %s ==%n", o.batch,
                o.heads, o.seq, o.dim, o.batch, o.kvHeads, o.seq, o.dim, o.causal ? "causal" : "non-causal",
                device);
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(42);
            NDArray q = manager.randomNormal(new Shape(o.batch, o.heads, o.seq, o.dim));
            NDArray k = manager.randomNormal(new Shape(o.batch, o.kvHeads, o.seq, o.dim));
            NDArray v = manager.randomNormal(new Shape(o.batch, o.kvHeads, o.seq, o.dim));
            NDArray ref;
            try (AttentionOutput r = Attention.forward(q.toType(DataType.FLOAT64, false),
                    k.toType(DataType.FLOAT64, false), v.toType(DataType.FLOAT64, false), spec, "math")) {
                ref = r.getOutput().duplicate();
            }
            out.printf(Locale.ROOT, "  %-8s %-14s %-12s %s%n", "backend", "max |err|", "time (ms)", "note");
            int failures = 0;
            for (CapabilityReport.BackendStatus b : report.getBackends()) {
                if (!b.isAvailable()) {
                    out.printf(Locale.ROOT, "  %-8s %-14s %-12s %s%n", b.getName(), "-", "-",
                            "skipped: " + b.getUnavailableReason());
                    continue;
                }
                try {
                    Attention.forward(q, k, v, spec, b.getName()).close(); // warm-up
                    long t0 = System.nanoTime();
                    double err;
                    try (AttentionOutput r = Attention.forward(q, k, v, spec, b.getName())) {
                        err = r.getOutput().toType(DataType.FLOAT64, false).sub(ref).abs().max().getDouble();
                    }
                    double ms = (System.nanoTime() - t0) / 1e6;
                    boolean ok = err < 1e-4;
                    failures += ok ? 0 : 1;
                    out.printf(Locale.ROOT, "  %-8s %-14.3e %-12.2f %s%n", b.getName(), err, ms,
                            ok ? "ok" : "ERROR above 1e-4");
                } catch (UnsupportedOperationException e) {
                    out.printf(Locale.ROOT, "  %-8s %-14s %-12s %s%n", b.getName(), "-", "-", e.getMessage());
                }
            }
            return failures == 0 ? 0 : 1;
        }
    }

    /** Parsed options of the {@code report} subcommand. */
    static final class ReportOptions {
        static final String USAGE = "usage: flashdjl report [--device cpu|gpu] [--batch N] [--heads N] [--kv-heads N]"
                + " [--seq N] [--dim N] [--no-causal] [--help]";
        String device = "cpu";
        int batch = 2;
        int heads = 8;
        int kvHeads = 2;
        int seq = 512;
        int dim = 64;
        boolean causal = true;
        boolean help;

        static ReportOptions parse(String[] args) {
            ReportOptions o = new ReportOptions();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--help":
                    case "-h":
                        o.help = true;
                        break;
                    case "--no-causal":
                        o.causal = false;
                        break;
                    case "--device":
                        o.device = value(args, ++i, a);
                        if (!o.device.equals("cpu") && !o.device.equals("gpu")) {
                            throw new IllegalArgumentException("--device must be cpu or gpu, got " + o.device);
                        }
                        break;
                    case "--batch":
                        o.batch = positive(args, ++i, a);
                        break;
                    case "--heads":
                        o.heads = positive(args, ++i, a);
                        break;
                    case "--kv-heads":
                        o.kvHeads = positive(args, ++i, a);
                        break;
                    case "--seq":
                        o.seq = positive(args, ++i, a);
                        break;
                    case "--dim":
                        o.dim = positive(args, ++i, a);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return o;
        }

        private static String value(String[] args, int i, String flag) {
            if (i >= args.length) {
                throw new IllegalArgumentException(flag + " needs a value");
            }
            return args[i];
        }

        private static int positive(String[] args, int i, String flag) {
            String v = value(args, i, flag);
            try {
                int n = Integer.parseInt(v);
                if (n <= 0) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " must be a positive integer, got " + v);
            }
        }
    }
}
