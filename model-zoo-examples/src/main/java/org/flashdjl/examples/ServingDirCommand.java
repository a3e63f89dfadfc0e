package org.flashdjl.examples;

import org.flashdjl.examples.serving.ServingConfig;
import org.flashdjl.examples.serving.ServingModelDir;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * {@code flashdjl serving-dir --out DIR [--model CKPT] [limits]}: checks the checkpoint by loading it, then writes
 * a self-contained DJL Serving model directory ({@link ServingModelDir}). Usage errors exit 2, a checkpoint or file
 * system failure exits 1; both print one {@code error:} line on stderr and write nothing.
 */
final class ServingDirCommand {

    static final String USAGE = String.join("\n",
            "usage: flashdjl serving-dir --out DIR [--model CKPT] [options]",
            "  --out DIR                   the model directory to write (new, empty, or an earlier serving directory)",
            "  --model CKPT                Hugging Face checkpoint (config.json, *.safetensors, tokenizer.json);"
                    + " default: the demo",
            "  --max-prompt-tokens N       longest prompt accepted (512)",
            "  --max-new-tokens N          largest max_new_tokens a request may ask for (128)",
            "  --max-rolling-batch-size N  requests decoded together (32)",
            "  --max-num-batched-tokens N  tokens per forward pass, prompt chunks included (512)",
            "  --kv-page-size N            tokens per KV page (16)",
            "  --kv-pages N                KV pool pages (default: max-rolling-batch-size largest requests)",
            "  --admission-timeout-ms N    wait for room in the batch before 503 (30000)",
            "  --request-timeout-ms N      a request's whole time limit, 0 = none (0)",
            "  --dtype auto|float32|float16  weights and KV pool (auto: float16 on a GPU, float32 on the CPU)",
            "  --backend NAME              dense attention backend (auto)",
            "  --no-libs                   leave out libs/ (the server has FlashDJL on its own class path)");

    private ServingDirCommand() {}

    static int run(String[] args, PrintStream out, PrintStream err) {
        Path dest = null;
        Path model = null;
        boolean libs = true;
        ServingConfig config;
        try {
            ServingConfig.Builder b = ServingConfig.builder();
            CliArgs a = new CliArgs(args);
            while (a.hasNext()) {
                String flag = a.next();
                switch (flag) {
                    case "--out":
                        dest = Paths.get(a.value(flag));
                        break;
                    case "--model":
                        model = Paths.get(a.value(flag));
                        break;
                    case "--max-prompt-tokens":
                        b.optMaxPromptTokens(a.longValue(flag));
                        break;
                    case "--max-new-tokens":
                        b.optMaxNewTokens(a.longValue(flag));
                        break;
                    case "--max-rolling-batch-size":
                        b.optMaxRollingBatchSize(a.longValue(flag));
                        break;
                    case "--max-num-batched-tokens":
                        b.optMaxNumBatchedTokens(a.longValue(flag));
                        break;
                    case "--kv-page-size":
                        b.optKvPageSize(a.longValue(flag));
                        break;
                    case "--kv-pages":
                        b.optKvNumPages(a.longValue(flag));
                        break;
                    case "--admission-timeout-ms":
                        b.optAdmissionTimeoutMillis(a.longValue(flag));
                        break;
                    case "--request-timeout-ms":
                        b.optRequestTimeoutMillis(a.longValue(flag));
                        break;
                    case "--dtype":
                        b.optDataType(a.value(flag));
                        break;
                    case "--backend":
                        b.optAttentionBackend(a.value(flag));
                        break;
                    case "--no-libs":
                        libs = false;
                        break;
                    case "--help":
                        out.println(USAGE);
                        return 0;
                    default:
                        throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            if (dest == null) {
                throw new IllegalArgumentException("serving-dir needs --out DIR");
            }
            config = b.build();
        } catch (IllegalArgumentException e) {
            err.println("error: " + e.getMessage());
            err.println(USAGE);
            return 2;
        }
        try {
            Path ckpt = model == null ? org.flashdjl.examples.demo.DemoCheckpoint.ensure(LoadedModel.defaultDemoDir())
                    : model;
            Path dir = ServingModelDir.write(dest, ckpt, config, libs);
            out.println("wrote DJL Serving model directory " + dir.toAbsolutePath().normalize());
            out.println("  serving.properties, README.md, " + (libs ? "libs/ (FlashDJL + tokenizers + JCuda jars), " : "")
                    + "config.json,"
                    + " *.safetensors" + (java.nio.file.Files.isRegularFile(ckpt.resolve("tokenizer.json"))
                            ? ", tokenizer.json" : ""));
            out.println("  " + config);
            out.println("  serve it: djl-serving -m flashdjl=file://" + dir.toAbsolutePath().normalize());
            return 0;
        } catch (IOException | IllegalArgumentException | IllegalStateException e) {
            err.println("error: " + e.getMessage());
            return 1;
        }
    }
}
