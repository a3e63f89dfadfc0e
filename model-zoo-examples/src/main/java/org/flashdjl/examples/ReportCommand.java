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
        ReportOptions o = ReportOptions.parse(args);
        if (o.help) {
            out.println(ReportOptions.USAGE);
            return 0;
        }
        Device device = o.device.equals("gpu") ? Device.gpu() : Device.cpu();
        o.checkFits(device);
        CapabilityReport report = CapabilityReport.probe();
        out.println("== FlashDJL capability report ==");
        out.print(report.format());
        out.println();
        return sample(o, report, out);
    }

    private static int sample(ReportOptions o, CapabilityReport report, PrintStream out) {
        Device device = o.device.equals("gpu") ? Device.gpu() : Device.cpu();
        if (device.isGpu() && report.getGpuCount() == 0) {
            throw new CliArgs.UsageException("--device gpu asked for, but the engine sees no GPU");
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
            CliArgs a = new CliArgs(args);
            while (a.hasNext()) {
                String flag = a.next();
                switch (flag) {
                    case "--help":
                    case "-h":
                        o.help = true;
                        break;
                    case "--no-causal":
                        o.causal = false;
                        break;
                    case "--device":
                        o.device = a.choice(flag, "cpu", "gpu");
                        break;
                    case "--batch":
                        o.batch = a.intValue(flag, 1);
                        break;
                    case "--heads":
                        o.heads = a.intValue(flag, 1);
                        break;
                    case "--kv-heads":
                        o.kvHeads = a.intValue(flag, 1);
                        break;
                    case "--seq":
                        o.seq = a.intValue(flag, 1);
                        break;
                    case "--dim":
                        o.dim = a.intValue(flag, 1);
                        break;
                    default:
                        throw new CliArgs.UsageException("unknown option " + flag);
                }
            }
            if (o.heads % o.kvHeads != 0) {
                throw new CliArgs.UsageException("--heads (" + o.heads + ") must be a multiple of --kv-heads ("
                        + o.kvHeads + ") (grouped-query attention)");
            }
            return o;
        }

        /**
         * Refuses a sample the machine cannot hold: the float64 reference builds the whole [B, H, L, L] score
         * matrix (plus its softmax), the fp32 math backend another one.
         */
        void checkFits(Device device) {
            double scores = (double) batch * heads * seq * seq;
            double inputs = (double) batch * (heads + 2L * kvHeads) * seq * dim;
            CliArgs.checkFits(scores * (8 * 2 + 4 * 2) + inputs * (4 + 8) * 2, device, "report --batch " + batch
                    + " --heads " + heads + " --seq " + seq + " --dim " + dim
                    + " (the reference's [B, H, L, L] score matrices)");
        }
    }
}
