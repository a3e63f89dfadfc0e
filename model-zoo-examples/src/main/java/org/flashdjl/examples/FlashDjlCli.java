package org.flashdjl.examples;

import java.io.PrintStream;
import java.util.Arrays;

/**
 * The demo command line (README command 1): streaming generation with a LLaMA-family model on FlashDJL's
 * attention, offline on CPU by default with a small deterministic demo checkpoint.
 *
 * <pre>
 * flashdjl [generate] [--model DIR] [--prompt TEXT] [--max-new-tokens N] [--backend NAME] [--device cpu|gpu]
 *                     [--window N] [--sinks N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 * flashdjl batch      [model options] [--prompt TEXT]... [--max-batch N]   continuous batching
 * flashdjl report     [--device cpu|gpu] [--seq N] ...                     capability report + attention sample
 * flashdjl --report   (same as report)
 * flashdjl serving-dir --out DIR [--model DIR]                             a DJL Serving model directory
 * </pre>
 */
public final class FlashDjlCli {

    private FlashDjlCli() {}

    /**
     * Runs the CLI.
     *
     * @param args command-line arguments
     */
    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /**
     * Runs the CLI, printing results to {@code out} and the progress bar to stderr.
     *
     * @param args command-line arguments
     * @param out where to print
     * @return the exit code
     */
    public static int run(String[] args, PrintStream out) {
        return run(args, out, System.err);
    }

    /**
     * Runs the CLI.
     *
     * @param args command-line arguments
     * @param out where results go
     * @param err where the progress bar goes
     * @return the exit code
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length > 0) {
            String[] rest = Arrays.copyOfRange(args, 1, args.length);
            switch (args[0]) {
                case "report":
                case "--report":
                    return ReportCommand.run(rest, out);
                case "generate":
                    return GenerateCommand.run(rest, out, err);
                case "batch":
                    return BatchCommand.run(rest, out);
                case "serving-dir":
                    return ServingDirCommand.run(rest, out, err);
                default:
                    break;
            }
        }
        return GenerateCommand.run(args, out, err);
    }
}
