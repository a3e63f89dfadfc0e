package org.flashdjl.examples;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The demo command line (README command 1): streaming generation with a LLaMA-family model on FlashDJL's
 * attention, offline on CPU by default with a small deterministic demo checkpoint.
 *
 * <pre>
 * flashdjl [generate] [--model DIR] [--prompt TEXT] [--max-new-tokens N] [--backend NAME] [--device cpu|gpu]
 *                     [--dtype float16|float32] [--window N] [--sinks N] [--temperature T] [--top-k K] ...
 * flashdjl batch      [model options] [--prompt TEXT]... [--max-batch N]   continuous batching
 * flashdjl report     [--device cpu|gpu] [--seq N] ...                     capability report + attention sample
 * flashdjl --report   (same as report)
 * flashdjl serving-dir --out DIR [--model DIR]                             a DJL Serving model directory
 * </pre>
 *
 * <p>Results go to stdout; the progress bar and every error to stderr. Exit codes: 0 success; 2 a command-line
 * mistake (an unknown option, a malformed value, a value that cannot fit the model or the machine, a prompt longer
 * than the model's positions); 1 any other failure (an unusable checkpoint, a runtime error). An error is one line,
 * {@code error: <what and why>}; {@code --verbose} (anywhere on the line) adds the stack trace.
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
     * Runs the CLI, printing results to {@code out} and the progress bar and errors to stderr.
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
     * @param err where the progress bar and errors go
     * @return the exit code: 0, 1 (failure) or 2 (command-line mistake)
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        List<String> rest = new ArrayList<>(Arrays.asList(args));
        boolean verbose = rest.remove("--verbose");
        try {
            return dispatch(rest.toArray(new String[0]), out, err);
        } catch (CliArgs.UsageException e) {
            err.println("error: " + e.getMessage());
            err.println("(flashdjl --help lists the options)");
            if (verbose) {
                e.printStackTrace(err);
            }
            return 2;
        } catch (Throwable t) { // the one place a failure becomes a message; --verbose shows where it came from
            err.println("error: " + describe(t));
            if (verbose) {
                t.printStackTrace(err);
            } else {
                err.println("(--verbose shows the stack trace)");
            }
            return 1;
        }
    }

    private static int dispatch(String[] args, PrintStream out, PrintStream err) throws Exception {
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

    // What went wrong, in one line: the message, else the kind of failure.
    static String describe(Throwable t) {
        if (t instanceof OutOfMemoryError) {
            return "out of memory (" + t.getMessage() + "); give the JVM more heap (-Xmx) or ask for less";
        }
        String msg = t.getMessage();
        if (msg == null || msg.isEmpty()) {
            return t.getClass().getSimpleName() + (t.getCause() != null ? ": " + describe(t.getCause()) : "");
        }
        return msg.replace('\n', ' ');
    }
}
