package org.flashdjl.examples;

import ai.djl.Device;

import org.flashdjl.engine.cache.StreamingKvCache;
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
            "                [--top-p P] [--seed S] [--cache streaming|contiguous] [--rope-positions original|in-cache]",
            "                [--threads N] [--no-bos] [--no-progress]",
            "       flashdjl batch [same model options] [--prompt TEXT]... [--max-batch N] [--max-new-tokens N]",
            "                      [--store paged|contiguous] [--pages N] [--page-size N]",
            "       flashdjl report [--device cpu|gpu] [--seq N] ...   (or --report: capability report + sample)",
            "       flashdjl serving-dir --out DIR [--model DIR] [--max-prompt-tokens N] [--max-new-tokens N]",
            "",
            "  --model DIR        Hugging Face checkpoint dir (config.json, *.safetensors, tokenizer.json);",
            "                     default: the offline demo model, written to target/demo-model on first run",
            "  --backend NAME     attention backend: auto (default), math, online, flash (CUDA)",
            "  --window N         sliding window: each token attends to the N most recent tokens (itself included)",
            "  --sinks N          with --window: the first N tokens stay visible (StreamingLLM attention sinks)",
            "  --cache KIND       with --window: streaming (default; fixed size sinks + window, BlockKvCache) or",
            "                     contiguous (keeps every token, masks)",
            "  --rope-positions P original (default; exact vs the masked full computation) or in-cache (StreamingLLM)",
            "  --temperature T    0 = greedy (default); > 0 samples, with --top-k / --top-p and --seed",
            "  --threads N        PyTorch intra-op threads (default 1: fastest for small-model decode; 0 = PyTorch's",
            "                     default)");

    /** Model options shared by generate, batch and serving-dir. */
    static final class ModelArgs {
        Path model;
        String device = "cpu";
        String backend = "auto";
        int window = -1;
        int sinks;
        boolean streamingCache = true;
        boolean inCache;
        int threads = 1;

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
                case "--threads":
                    threads = a.intValue(flag, 0);
                    return true;
                case "--cache":
                    String c = a.value(flag);
                    if (!c.equals("streaming") && !c.equals("contiguous")) {
                        throw new IllegalArgumentException("--cache must be streaming or contiguous, got " + c);
                    }
                    streamingCache = c.equals("streaming");
                    return true;
                case "--rope-positions":
                    String r = a.value(flag);
                    if (!r.equals("original") && !r.equals("in-cache")) {
                        throw new IllegalArgumentException("--rope-positions must be original or in-cache, got " + r);
                    }
                    inCache = r.equals("in-cache");
                    return true;
                default:
                    return false;
            }
        }

        void check() {
            if (sinks > 0 && window < 0) {
                throw new IllegalArgumentException("--sinks needs --window (sinks stay visible outside the window)");
            }
            if (inCache && (window < 0 || !streamingCache)) {
                throw new IllegalArgumentException("--rope-positions in-cache needs --window and the streaming cache");
            }
        }

        AttentionOptions options() {
            return AttentionOptions.builder().optBackend(backend).optSlidingWindow(window).optSinkTokens(sinks)
                    .optStreamingCache(streamingCache).optRopePositions(inCache
                            ? StreamingKvCache.Positions.IN_CACHE : StreamingKvCache.Positions.ORIGINAL).build();
        }

        Device deviceObject() {
            return device.equals("gpu") ? Device.gpu() : Device.cpu();
        }

        LoadedModel load() throws IOException {
            // Before the engine starts: PyTorch's intra-op threads (decode of small models is fastest on one, and
            // spinning threads collapse under contention); 0 leaves PyTorch's default. A -D setting wins.
            if (threads > 0 && System.getProperty("ai.djl.pytorch.num_threads") == null) {
                System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(threads));
                System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
            }
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
        boolean tty = System.console() != null && out == System.out && err == System.err;
        StreamView view = new StreamView(out, err, progress, tty);
        view.text(CliArgs.printable(prompt));
        GenerationResult r = gen.generate(ids, config, view::onToken);
        view.done();
        out.println("---");
        double prefillMs = r.getPrefillNanos() / 1e6;
        out.printf(Locale.ROOT, "prefill   : %d tokens in %.1f ms (%.0f tokens/s)%n", ids.length, prefillMs,
                ids.length / (prefillMs / 1e3));
        out.printf(Locale.ROOT, "decode    : %d tokens in %.1f ms (%.1f tokens/s)%n", r.getTokenIds().length - 1,
                r.getDecodeNanos() / 1e6, r.getDecodeTokensPerSecond());
        out.printf(Locale.ROOT, "KV cache  : %s peak (%d layers, %d tokens streamed, fp32 K+V; %s)%n",
                CliArgs.bytes(r.getKvBytes()), model.getConfig().getNumLayers(), ids.length + r.getTokenIds().length,
                m.window > 0 && m.streamingCache ? "fixed size" : "buffers grow by doubling");
        out.printf(Locale.ROOT, "finished  : %s%n", r.getFinishReason() == GenerationResult.FinishReason.EOS
                ? "end of sequence" : "max new tokens");
        return 0;
    }

    private static String describeCache(ModelArgs m) {
        if (m.window > 0) {
            String w = "sliding window " + m.window + (m.sinks > 0 ? " + " + m.sinks + " sinks" : "");
            return m.streamingCache
                    ? w + " (streaming cache: BlockKvCache of " + (m.window + m.sinks) + " slots, "
                            + (m.inCache ? "in-cache" : "original") + " RoPE positions)"
                    : w + " (contiguous cache, windowed mask)";
        }
        return "full causal (contiguous cache)";
    }

    /**
     * Shows the generated text as it streams, with a progress bar (tokens, tokens/s, KV memory).
     *
     * <p>On a terminal the bar is the last line on screen, redrawn under the growing text (ANSI: clear line, cursor
     * up); text is soft-wrapped at {@link #WIDTH} columns so the redraw stays on one line. Otherwise the text
     * streams to stdout untouched and the bar goes to stderr as a line at every quarter.
     */
    static final class StreamView {
        static final int WIDTH = 100;
        private final PrintStream out;
        private final PrintStream err;
        private final boolean progress;
        private final boolean tty;
        private final StringBuilder line = new StringBuilder();
        private TokenEvent last;
        private int lastQuarter;
        private long lastDraw;

        StreamView(PrintStream out, PrintStream err, boolean progress, boolean tty) {
            this.out = out;
            this.err = err;
            this.progress = progress;
            this.tty = tty && progress;
            if (this.tty) {
                out.print("\n" + bar(null) + "\r\033[1A"); // reserve the bar line under the text
                out.flush();
            }
        }

        void text(String text) {
            if (!tty) {
                out.print(text);
                out.flush();
                return;
            }
            append(text);
            out.print("\r\033[K" + line);
            out.flush();
        }

        private void append(String text) {
            for (char c : text.toCharArray()) {
                if (c == '\n' || line.length() >= WIDTH) {
                    out.print("\r\033[K" + line + "\n\033[K\n\033[1A"); // commit the line, keep a bar line
                    line.setLength(0);
                    if (c == '\n') {
                        continue;
                    }
                }
                line.append(c);
            }
        }

        void onToken(TokenEvent e) {
            last = e;
            String text = CliArgs.printable(e.getText());
            if (!tty) {
                out.print(text);
                out.flush();
                int quarter = 4 * e.getIndex() / e.getMaxNewTokens();
                if (progress && quarter > lastQuarter) {
                    lastQuarter = quarter;
                    err.println(bar(e));
                }
                return;
            }
            append(text);
            long now = System.nanoTime();
            if (now - lastDraw > 50_000_000L || e.getIndex() == e.getMaxNewTokens()) {
                lastDraw = now;
                // draw the bar on the line below, come back to the end of the text
                out.print("\r\033[K" + line + "\n\r\033[K" + bar(e) + "\r\033[1A\033[" + (line.length() + 1) + "G");
            } else {
                out.print("\r\033[K" + line);
            }
            out.flush();
        }

        void done() {
            if (tty) {
                out.print("\r\033[K" + line + "\n\r\033[K" + bar(last));
                out.println();
            } else {
                out.println();
            }
            out.flush();
        }

        private static String bar(TokenEvent e) {
            int width = 24;
            int index = e == null ? 0 : e.getIndex();
            int max = e == null ? 1 : e.getMaxNewTokens();
            int filled = (int) ((long) width * index / max);
            StringBuilder sb = new StringBuilder("[");
            for (int k = 0; k < width; k++) {
                sb.append(k < filled ? '#' : '.');
            }
            double secs = e == null ? 0 : e.getElapsedNanos() / 1e9;
            sb.append(String.format(Locale.ROOT, "] %d/%d tokens | %.1f tokens/s | KV %s", index, e == null ? 0
                    : max, secs == 0 ? 0 : index / secs, CliArgs.bytes(e == null ? 0 : e.getKvBytes())));
            return sb.toString();
        }
    }
}
