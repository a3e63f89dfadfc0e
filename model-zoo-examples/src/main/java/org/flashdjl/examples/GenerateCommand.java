package org.flashdjl.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.attention.AttentionBackends;

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
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code flashdjl [generate]}: streaming generation. The text streams to stdout as it is generated; a progress
 * bar with tokens/s and KV memory updates on stderr; a summary follows on stdout.
 */
final class GenerateCommand {

    static final String USAGE = String.join("\n",
            "usage: flashdjl [generate] [--model DIR] [--prompt TEXT] [--max-new-tokens N] [--backend NAME]",
            "                [--device cpu|gpu] [--dtype float16|float32] [--window N] [--sinks N]",
            "                [--temperature T] [--top-k K] [--top-p P] [--seed S] [--cache streaming|contiguous]",
            "                [--rope-positions original|in-cache] [--truncate-prompt left|right] [--ignore-eos]",
            "                [--threads N] [--no-bos] [--no-progress] [--verbose]",
            "       flashdjl batch [same model options] [--prompt TEXT]... [--max-batch N] [--max-new-tokens N]",
            "                      [--store paged|contiguous] [--pages N] [--page-size N]",
            "       flashdjl report [--device cpu|gpu] [--seq N] ...   (or --report: capability report + sample)",
            "       flashdjl serving-dir --out DIR [--model DIR] [--max-prompt-tokens N] [--max-new-tokens N]",
            "",
            "  --model DIR        Hugging Face checkpoint dir (config.json, *.safetensors, tokenizer.json) of a llama,",
            "                     mistral, qwen2 or gemma2 model; default: the offline demo model (target/demo-model)",
            "  --backend NAME     attention backend: auto (default), math, online, flash (CUDA)",
            "  --dtype T          compute dtype: float16 (default on a GPU) or float32 (default on the CPU); weights",
            "                     are converted on load (bf16 checkpoints too); logits are always fp32",
            "  --window N         sliding window on every layer: each token attends to the N most recent tokens",
            "                     (itself included); default: the checkpoint's own windows",
            "  --sinks N          with --window: the first N tokens stay visible (StreamingLLM attention sinks)",
            "  --cache KIND       with a window: streaming (default; fixed size sinks + window, BlockKvCache) or",
            "                     contiguous (keeps every token, masks)",
            "  --rope-positions P original (default; exact vs the masked full computation) or in-cache (StreamingLLM)",
            "  --truncate-prompt S  a prompt longer than the model's positions is an error, unless S is left (keep",
            "                     the last tokens) or right (keep the first ones)",
            "  --ignore-eos       generate --max-new-tokens tokens even past an end-of-sequence token",
            "  --temperature T    0 = greedy (default); > 0 samples, with --top-k / --top-p and --seed",
            "  --threads N        PyTorch intra-op threads (default 1: fastest for small-model decode; 0 = PyTorch's",
            "                     default)",
            "  --verbose          on an error, also print the stack trace",
            "",
            "Exit codes: 0 success, 1 failure (e.g. an unusable checkpoint), 2 command-line mistake.");

    /** Model options shared by generate and batch. */
    static final class ModelArgs {
        Path model;
        String device = "cpu";
        String backend = "auto";
        DataType dtype;
        int window; // 0: the checkpoint's windows
        int sinks;
        boolean streamingCache = true;
        boolean inCache;
        int threads = 1;
        String truncate;

        boolean accept(String flag, CliArgs a) {
            switch (flag) {
                case "--model":
                    model = Paths.get(a.value(flag));
                    return true;
                case "--device":
                    device = a.choice(flag, "cpu", "gpu");
                    return true;
                case "--backend":
                    backend = a.value(flag);
                    return true;
                case "--dtype":
                    dtype = a.choice(flag, "float16", "float32").equals("float16") ? DataType.FLOAT16
                            : DataType.FLOAT32;
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
                    streamingCache = a.choice(flag, "streaming", "contiguous").equals("streaming");
                    return true;
                case "--rope-positions":
                    inCache = a.choice(flag, "original", "in-cache").equals("in-cache");
                    return true;
                case "--truncate-prompt":
                    truncate = a.choice(flag, "left", "right");
                    return true;
                default:
                    return false;
            }
        }

        void check() {
            if (sinks > 0 && window <= 0) {
                throw new CliArgs.UsageException("--sinks needs --window (sinks stay visible outside the window)");
            }
            if ((long) window + sinks > Integer.MAX_VALUE) {
                throw new CliArgs.UsageException("--window " + window + " + --sinks " + sinks + " exceed "
                        + Integer.MAX_VALUE + " cache slots");
            }
            if (inCache && (window <= 0 || !streamingCache)) {
                throw new CliArgs.UsageException("--rope-positions in-cache needs --window and the streaming cache");
            }
            try {
                AttentionBackends.check(backend);
            } catch (IllegalArgumentException e) {
                throw new CliArgs.UsageException("--backend: " + e.getMessage());
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
            Device d = deviceObject();
            if (d.isGpu() && Engine.getInstance().getGpuCount() == 0) {
                throw new CliArgs.UsageException("--device gpu asked for, but the engine sees no GPU");
            }
            return LoadedModel.load(model, d, options(), dtype);
        }

        /** Whether every layer slides over a fixed-size streaming cache (a stream of any length fits). */
        boolean streams(LlamaModel model) {
            if (!streamingCache) {
                return false;
            }
            for (int i = 0; i < model.getLayers().size(); i++) {
                if (model.getSlidingWindow(i) <= 0) {
                    return false;
                }
            }
            return true;
        }

        /**
         * Fits a prompt to the model's positions: refused when longer than {@code max_position_embeddings} (or
         * than what leaves room for the new tokens, unless the run streams), or truncated as
         * {@code --truncate-prompt} says.
         *
         * @param ids the prompt ids
         * @param maxNew the new tokens to leave room for
         * @param model the model
         * @param what how the prompt is named in messages
         * @param streams whether the run streams through fixed-size caches (any length fits)
         * @return the ids, possibly truncated
         */
        int[] fitPrompt(int[] ids, int maxNew, LlamaModel model, String what, boolean streams) {
            int maxPos = model.getConfig().getMaxPositions();
            long room = streams ? maxPos : (long) maxPos - maxNew;
            if (!streams && room < 1) {
                throw new CliArgs.UsageException("--max-new-tokens " + maxNew + " leaves no room for a prompt within"
                        + " the model's " + maxPos + " positions (max_position_embeddings); lower it, or stream with"
                        + " --window N");
            }
            if (ids.length <= room) {
                return ids;
            }
            if (truncate == null) {
                throw new CliArgs.UsageException(what + " is " + ids.length + " tokens; " + (ids.length > maxPos
                        ? "the model's positions end at " + maxPos + " (max_position_embeddings)"
                        : "with --max-new-tokens " + maxNew + " it runs past the model's " + maxPos
                                + " positions (max_position_embeddings)")
                        + "; --truncate-prompt left|right keeps the last|first " + room + " tokens"
                        + (streams ? "" : ", or lower --max-new-tokens, or stream with --window N"));
            }
            int keep = (int) room;
            return truncate.equals("left") ? Arrays.copyOfRange(ids, ids.length - keep, ids.length)
                    : Arrays.copyOf(ids, keep);
        }

        /** Refuses caches that cannot fit the device before they are allocated. */
        void checkCacheFits(LoadedModel lm, long tokens, String what) {
            LlamaModel model = lm.getModel();
            Device device = lm.getManager().getDevice();
            double perToken = model.kvBytesPerToken();
            if (streams(model)) {
                long slots = 0;
                for (int i = 0; i < model.getLayers().size(); i++) {
                    slots = Math.max(slots, (long) model.getSlidingWindow(i)
                            + model.getLayers().get(i).getSelfAttn().getSinkTokens());
                }
                CliArgs.checkFits(slots * perToken, device, (window > 0 ? "--window " + window
                        + (sinks > 0 ? " --sinks " + sinks : "") : "the checkpoint's sliding window")
                        + " (a streaming cache of " + slots + " slots per layer)");
            } else if (model.usesStreamingCaches()) {
                // the layers without a window keep contiguous caches, which grow by doubling
                CliArgs.checkFits(2.0 * tokens * perToken, device, what + " (contiguous KV caches of " + tokens
                        + " tokens)");
            } else {
                // Generator's paged store: allocated once for every token of the stream
                CliArgs.checkFits((double) tokens * perToken, device, what + " (a paged KV cache of " + tokens
                        + " tokens)");
            }
        }
    }

    private GenerateCommand() {}

    static int run(String[] args, PrintStream out, PrintStream err) throws IOException {
        ModelArgs m = new ModelArgs();
        GenerationConfig.Builder g = GenerationConfig.builder();
        List<String> prompts = new ArrayList<>();
        boolean progress = true;
        int maxNew = 64;
        CliArgs a = new CliArgs(args);
        while (a.hasNext()) {
            String flag = a.next();
            if (m.accept(flag, a)) {
                continue;
            }
            try {
                if (option(flag, a, g, prompts)) {
                    continue;
                }
            } catch (CliArgs.UsageException e) {
                throw e;
            } catch (IllegalArgumentException e) { // GenerationConfig's range checks
                throw new CliArgs.UsageException(flag + ": " + e.getMessage());
            }
            switch (flag) {
                case "--help":
                case "-h":
                    out.println(USAGE);
                    return 0;
                case "--max-new-tokens":
                    maxNew = a.intValue(flag, 1);
                    break;
                case "--no-progress":
                    progress = false;
                    break;
                default:
                    throw new CliArgs.UsageException("unknown option " + flag);
            }
        }
        m.check();
        GenerationConfig config;
        try {
            config = g.optMaxNewTokens(maxNew).build();
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        String prompt = prompts.isEmpty() ? "The quick brown fox" : String.join(" ", prompts);
        try (LoadedModel lm = m.load()) {
            Generator gen = new Generator(lm.getModel(), lm.getTokenizer(), lm.getManager());
            int[] ids = m.fitPrompt(gen.promptIds(prompt, config), maxNew, lm.getModel(), "the prompt",
                    m.streams(lm.getModel()));
            // the generated ids are kept (4 bytes each): a count the heap cannot hold is refused up front
            long heap = Runtime.getRuntime().maxMemory();
            if (4L * maxNew > heap / 4) {
                throw new CliArgs.UsageException("--max-new-tokens " + maxNew + " keeps " + CliArgs.bytes(4.0
                        * maxNew) + " of token ids, more than a quarter of the JVM heap (" + CliArgs.bytes(heap)
                        + ", -Xmx)");
            }
            m.checkCacheFits(lm, (long) ids.length + maxNew, "the prompt + --max-new-tokens " + maxNew);
            return generate(lm, gen, ids, prompt, config, m, progress, out, err);
        }
    }

    // Sampling options shared with batch; false when the flag is not one of them.
    static boolean option(String flag, CliArgs a, GenerationConfig.Builder g, List<String> prompts) {
        switch (flag) {
            case "--prompt":
                prompts.add(a.value(flag));
                return true;
            case "--temperature":
                g.optTemperature(a.floatValue(flag));
                return true;
            case "--top-k":
                g.optTopK(a.intValue(flag, 0));
                return true;
            case "--top-p":
                g.optTopP(a.floatValue(flag));
                return true;
            case "--seed":
                g.optSeed(a.longValue(flag));
                return true;
            case "--no-bos":
                g.optAddBos(false);
                return true;
            case "--ignore-eos":
                g.optStopAtEos(false);
                return true;
            default:
                return false;
        }
    }

    private static int generate(LoadedModel lm, Generator gen, int[] ids, String prompt, GenerationConfig config,
            ModelArgs m, boolean progress, PrintStream out, PrintStream err) {
        LlamaModel model = lm.getModel();
        out.println("== FlashDJL: streaming generation ==");
        out.printf(Locale.ROOT, "model     : %s%s%n", lm.getDir(), lm.isDemo()
                ? " (offline demo: seeded random weights, byte-level tokenizer; the text is meaningless)" : "");
        out.printf(Locale.ROOT, "            %s%n", model.getConfig());
        out.printf(Locale.ROOT, "attention : %s on %s, %s, %s%n", model.getOptions(), lm.getManager().getDevice(),
                dtypeName(lm.getDataType()), describeCache(m, model));
        out.printf(Locale.ROOT, "sampling  : %s, max %d new tokens%s%n", config, config.getMaxNewTokens(),
                config.isStopAtEos() ? "" : ", ignoring EOS");
        out.printf(Locale.ROOT, "prompt    : %d tokens%s%n", ids.length, ids.length < gen.promptIds(prompt, config)
                .length ? " (truncated by --truncate-prompt " + m.truncate + ")" : "");
        out.println("---");
        boolean tty = System.console() != null && out == System.out && err == System.err;
        StreamView view = new StreamView(out, err, progress, tty);
        boolean truncated = ids.length < gen.promptIds(prompt, config).length;
        String shown = !truncated ? prompt : m.truncate.equals("left") ? "\u2026" + lm.getTokenizer().decode(ids)
                : lm.getTokenizer().decode(ids) + "\u2026";
        view.text(CliArgs.printable(shown));
        GenerationResult r = gen.generate(ids, config, view::onToken);
        view.done();
        out.println("---");
        double prefillMs = r.getPrefillNanos() / 1e6;
        out.printf(Locale.ROOT, "prefill   : %d tokens in %.1f ms (%.0f tokens/s)%n", ids.length, prefillMs,
                ids.length / (prefillMs / 1e3));
        out.printf(Locale.ROOT, "decode    : %d tokens in %.1f ms (%.1f tokens/s)%n", r.getTokenIds().length - 1,
                r.getDecodeNanos() / 1e6, r.getDecodeTokensPerSecond());
        out.printf(Locale.ROOT, "KV cache  : %s peak (%d layers, %d tokens streamed, %s K+V; %s)%n",
                CliArgs.bytes(r.getKvBytes()), model.getConfig().getNumLayers(), ids.length + r.getTokenIds().length,
                dtypeName(lm.getDataType()), m.streams(model) ? "fixed size" : model.usesStreamingCaches()
                        ? "buffers grow by doubling" : "pages allocated once");
        out.printf(Locale.ROOT, "finished  : %s%n", r.getFinishReason() == GenerationResult.FinishReason.EOS
                ? "end of sequence" : "max new tokens");
        return 0;
    }

    private static String dtypeName(DataType t) {
        return t == DataType.FLOAT16 ? "fp16" : "fp32";
    }

    private static String describeCache(ModelArgs m, LlamaModel model) {
        if (m.window > 0) {
            String w = "sliding window " + m.window + (m.sinks > 0 ? " + " + m.sinks + " sinks" : "");
            return m.streamingCache
                    ? w + " (streaming cache: BlockKvCache of " + ((long) m.window + m.sinks) + " slots, "
                            + (m.inCache ? "in-cache" : "original") + " RoPE positions)"
                    : w + " (paged cache, windowed mask)";
        }
        int windowed = 0;
        for (int i = 0; i < model.getLayers().size(); i++) {
            windowed += model.getSlidingWindow(i) > 0 ? 1 : 0;
        }
        if (windowed > 0) {
            return "the checkpoint's sliding window " + model.getConfig().getSlidingWindow() + " on " + windowed
                    + " of " + model.getLayers().size() + " layers (" + (m.streamingCache ? "streaming caches there,"
                    + " contiguous elsewhere" : "paged cache") + ")";
        }
        return "full causal (paged cache, pages allocated once)";
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
