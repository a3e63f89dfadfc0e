package org.flashdjl.examples;

import ai.djl.Device;

import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.generate.TokenEvent;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaModel;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code flashdjl [generate]}: streaming generation. The text streams to stdout as it is generated; a progress
 * bar with tokens/s and KV memory updates on stderr; a summary follows on stdout.
 */
final class GenerateCommand {

    static final String USAGE = String.join("\n",
            "usage: flashdjl [generate] [--model DIR] [--prompt TEXT] [--max-new-tokens N] [--backend NAME]",
            "                [--device cpu|gpu] [--window N] [--sinks N] [--temperature T] [--top-k K]",
            "                [--top-p P] [--seed S] [--no-bos] [--no-progress]",
            "       flashdjl batch [same model options] [--prompt TEXT]... [--max-batch N] [--max-new-tokens N]",
            "       flashdjl report [--device cpu|gpu] [--seq N] ...   (or --report: capability report + sample)",
            "       flashdjl serving-dir --out DIR [--model DIR] [--max-prompt-tokens N] [--max-new-tokens N]",
            "",
            "  --model DIR        Hugging Face checkpoint dir (config.json, *.safetensors, tokenizer.json);",
            "                     default: the offline demo model, written to target/demo-model on first run",
            "  --backend NAME     attention backend: auto (default), math, online, flash (CUDA)",
            "  --window N         sliding window: each token attends to the N most recent tokens (itself included)",
            "  --sinks N          with --window: the first N tokens stay visible (StreamingLLM attention sinks)",
            "  --temperature T    0 = greedy (default); > 0 samples, with --top-k / --top-p and --seed");

    /** Model options shared by generate, batch and serving-dir. */
    static final class ModelArgs {
        Path model;
        String device = "cpu";
        String backend = "auto";
        int window = -1;
        int sinks;

        boolean accept(String flag, CliArgs a) {
            switch (flag) {
                case "--model":
                    model = Paths.get(a.value(flag));
                    return true;
                case "--device":
                    device = a.value(flag);
                    if (!device.equals("cpu") && !device.equals("gpu")) {
                        throw new IllegalArgumentException("--device must be cpu or gpu, got " + device);
                    }
                    return true;
                case "--backend":
                    backend = a.value(flag);
                    return true;
                case "--window":
                    window = a.intValue(flag, 1);
                    return true;
                case "--sinks":
                    sinks = a.intValue(flag, 0);
                    return true;
                default:
                    return false;
            }
        }

        void check() {
            if (sinks > 0 && window < 0) {
                throw new IllegalArgumentException("--sinks needs --window (sinks stay visible outside the window)");
            }
        }

        AttentionOptions options() {
            return AttentionOptions.builder().optBackend(backend).optSlidingWindow(window).optSinkTokens(sinks)
                    .build();
        }

        Device deviceObject() {
            return device.equals("gpu") ? Device.gpu() : Device.cpu();
        }

        LoadedModel load() throws IOException {
            return LoadedModel.load(model, deviceObject(), options());
        }
    }

    private GenerateCommand() {}

    static int run(String[] args, PrintStream out, PrintStream err) {
        ModelArgs m = new ModelArgs();
        GenerationConfig.Builder g = GenerationConfig.builder();
        List<String> prompts = new ArrayList<>();
        boolean progress = true;
        try {
            CliArgs a = new CliArgs(args);
            while (a.hasNext()) {
                String flag = a.next();
                if (m.accept(flag, a)) {
                    continue;
                }
                switch (flag) {
                    case "--help":
                    case "-h":
                        out.println(USAGE);
                        return 0;
                    case "--prompt":
                        prompts.add(a.value(flag));
                        break;
                    case "--max-new-tokens":
                        g.optMaxNewTokens(a.intValue(flag, 1));
                        break;
                    case "--temperature":
                        g.optTemperature(a.floatValue(flag));
                        break;
                    case "--top-k":
                        g.optTopK(a.intValue(flag, 0));
                        break;
                    case "--top-p":
                        g.optTopP(a.floatValue(flag));
                        break;
                    case "--seed":
                        g.optSeed(a.longValue(flag));
                        break;
                    case "--no-bos":
                        g.optAddBos(false);
                        break;
                    case "--no-progress":
                        progress = false;
                        break;
                    default:
                        throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            m.check();
        } catch (IllegalArgumentException e) {
            out.println("error: " + e.getMessage());
            out.println(USAGE);
            return 2;
        }
        String prompt = prompts.isEmpty() ? "The quick brown fox" : String.join(" ", prompts);
        GenerationConfig config = g.build();
        try (LoadedModel lm = m.load()) {
            return generate(lm, prompt, config, m, progress, out, err);
        } catch (IOException | IllegalArgumentException | UnsupportedOperationException e) {
            out.println("error: " + e.getMessage());
            return 2;
        }
    }

    private static int generate(LoadedModel lm, String prompt, GenerationConfig config, ModelArgs m,
            boolean progress, PrintStream out, PrintStream err) {
        LlamaModel model = lm.getModel();
        Generator gen = new Generator(model, lm.getTokenizer(), lm.getManager());
        int[] ids = gen.promptIds(prompt, config);
        out.println("== FlashDJL: streaming generation ==");
        out.printf(Locale.ROOT, "model     : %s%s%n", lm.getDir(), lm.isDemo()
                ? " (offline demo: seeded random weights, byte-level tokenizer; the text is meaningless)" : "");
        out.printf(Locale.ROOT, "            %s%n", model.getConfig());
        out.printf(Locale.ROOT, "attention : %s on %s, %s%n", model.getOptions(), lm.getManager().getDevice(),
                describeCache(m));
        out.printf(Locale.ROOT, "sampling  : %s, max %d new tokens%n", config, config.getMaxNewTokens());
        out.printf(Locale.ROOT, "prompt    : %d tokens%n", ids.length);
        out.println("---");
        out.print(CliArgs.printable(prompt));
        out.flush();
        ProgressBar bar = progress ? new ProgressBar(err) : null;
        GenerationResult r = gen.generate(ids, config, e -> {
            out.print(CliArgs.printable(e.getText()));
            out.flush();
            if (bar != null) {
                bar.update(e);
            }
        });
        if (bar != null) {
            bar.done();
        }
        out.println();
        out.println("---");
        double prefillMs = r.getPrefillNanos() / 1e6;
        out.printf(Locale.ROOT, "prefill   : %d tokens in %.1f ms (%.0f tokens/s)%n", ids.length, prefillMs,
                ids.length / (prefillMs / 1e3));
        out.printf(Locale.ROOT, "decode    : %d tokens in %.1f ms (%.1f tokens/s)%n", r.getTokenIds().length - 1,
                r.getDecodeNanos() / 1e6, r.getDecodeTokensPerSecond());
        out.printf(Locale.ROOT, "KV cache  : %s (%d layers, %d tokens, fp32 K+V, contiguous buffers)%n",
                CliArgs.bytes(r.getKvBytes()), model.getConfig().getNumLayers(), ids.length + r.getTokenIds().length);
        out.printf(Locale.ROOT, "finished  : %s%n", r.getFinishReason() == GenerationResult.FinishReason.EOS
                ? "end of sequence" : "max new tokens");
        return 0;
    }

    private static String describeCache(ModelArgs m) {
        if (m.window > 0) {
            return "sliding window " + m.window + (m.sinks > 0 ? " + " + m.sinks + " sinks" : "")
                    + " (contiguous cache, windowed mask)";
        }
        return "full causal (contiguous cache)";
    }

    /** A one-line progress bar on stderr: tokens, tokens/s, KV memory. */
    static final class ProgressBar {
        private final PrintStream err;
        private long lastPrint;
        private TokenEvent last;

        ProgressBar(PrintStream err) {
            this.err = err;
        }

        void update(TokenEvent e) {
            last = e;
            long now = System.nanoTime();
            if (e.getIndex() == e.getMaxNewTokens() || now - lastPrint > 100_000_000L) {
                lastPrint = now;
                print(e, false);
            }
        }

        void done() {
            if (last != null) {
                print(last, true);
            }
        }

        private void print(TokenEvent e, boolean end) {
            int width = 24;
            int filled = (int) ((long) width * e.getIndex() / e.getMaxNewTokens());
            StringBuilder sb = new StringBuilder("\r[");
            for (int k = 0; k < width; k++) {
                sb.append(k < filled ? '#' : '.');
            }
            double secs = e.getElapsedNanos() / 1e9;
            sb.append(String.format(Locale.ROOT, "] %d/%d tokens | %.1f tokens/s | KV %s", e.getIndex(),
                    e.getMaxNewTokens(), e.getIndex() / secs, CliArgs.bytes(e.getKvBytes())));
            err.print(sb);
            if (end) {
                err.println();
            }
            err.flush();
        }
    }
}
