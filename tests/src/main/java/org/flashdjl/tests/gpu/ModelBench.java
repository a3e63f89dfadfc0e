package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.StreamingDecoder;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The model benchmark (issue: the model on CUDA faster than Hugging Face transformers), the Java side of
 * {@code tests/gpu/hf_model_bench.py} on the same checkpoint: prefill of 512 tokens, decode ms/token over 128 greedy
 * tokens at batch 1 ({@link Generator}), and continuous batching of 32 and 128 requests of 512-token prompts and 128
 * new tokens each ({@link BatchGenerator} over the paged cache), one JSON line per measurement on stdout.
 *
 * <pre>
 * java ... org.flashdjl.tests.gpu.ModelBench --model DIR [--device gpu|cpu] [--dtype float16|float32]
 *     [--backend auto] [--batches 32,128] [--prompt 512] [--new 128] [--reps 5]
 * </pre>
 *
 * <p>Timing: wall time around whole calls that end in a host copy of the sampled token (so the device work is
 * done), warm-up first, median of repeats. decode ms/token = the generator's decode time / (tokens - 1).
 */
public final class ModelBench {

    private ModelBench() {}

    /** Token ids as text: the benchmark feeds ids and never needs words. */
    static final class IdTokenizer implements TextTokenizer {
        @Override
        public int[] encode(String text) {
            throw new UnsupportedOperationException("the benchmark works on ids");
        }

        @Override
        public String decode(int[] ids) {
            return Arrays.toString(ids);
        }

        @Override
        public int getBosId() {
            return -1;
        }

        @Override
        public List<Integer> getEosIds() {
            return Collections.emptyList();
        }

        @Override
        public StreamingDecoder newStreamingDecoder() {
            return new StreamingDecoder() {
                @Override
                public String next(int id) {
                    return "";
                }

                @Override
                public String flush() {
                    return "";
                }
            };
        }
    }

    /**
     * Runs the benchmark.
     *
     * @param args see the class doc
     * @throws Exception on any failure (the bundle's runner records the exit status)
     */
    public static void main(String[] args) throws Exception {
        Path dir = null;
        String device = "gpu";
        DataType dtype = DataType.FLOAT16;
        String backend = "auto";
        int[] batches = {32, 128};
        int prompt = 512;
        int newTokens = 128;
        int reps = 5;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model": dir = Paths.get(args[++i]); break;
                case "--device": device = args[++i]; break;
                case "--dtype": dtype = DataType.valueOf(args[++i].toUpperCase(Locale.ROOT)); break;
                case "--backend": backend = args[++i]; break;
                case "--batches":
                    batches = Arrays.stream(args[++i].split(",")).filter(s -> !s.isEmpty())
                            .mapToInt(Integer::parseInt).toArray();
                    break;
                case "--prompt": prompt = Integer.parseInt(args[++i]); break;
                case "--new": newTokens = Integer.parseInt(args[++i]); break;
                case "--reps": reps = Integer.parseInt(args[++i]); break;
                default: throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (dir == null) {
            throw new IllegalArgumentException("--model DIR is required");
        }
        Device dev = "gpu".equals(device) ? Device.gpu() : Device.cpu();
        try (NDManager manager = NDManager.newBaseManager(dev)) {
            long t0 = System.nanoTime();
            LlamaModel model = LlamaLoader.load(dir, manager,
                    AttentionOptions.builder().optBackend(backend).build(), dtype);
            String base = String.format(Locale.ROOT, "\"impl\":\"flashdjl\",\"device\":\"%s\",\"dtype\":\"%s\","
                    + "\"backend\":\"%s\"", dev, dtype.name().toLowerCase(Locale.ROOT), backend);
            System.err.printf(Locale.ROOT, "loaded %s in %.1f s%n", model.getConfig(), (System.nanoTime() - t0) / 1e9);
            Random rnd = new Random(2);
            int vocab = Math.min(model.getConfig().getVocabSize(), 128000);
            warmUp(model, manager, ids(rnd, 1, prompt, vocab)[0]);
            decode(model, manager, ids(rnd, 1, prompt, vocab)[0], newTokens, base);
            prefill(model, manager, ids(rnd, 1, prompt, vocab)[0], reps, base);
            for (int b : batches) {
                batched(model, manager, ids(rnd, b, prompt, vocab), newTokens, base);
            }
        }
    }

    private static int[][] ids(Random rnd, int batch, int len, int vocab) {
        int[][] ids = new int[batch][len];
        for (int[] row : ids) {
            for (int i = 0; i < len; i++) {
                row[i] = 3 + rnd.nextInt(vocab - 3);
            }
        }
        return ids;
    }

    // The prompt through the path Generator takes (a paged store of one sequence, forwardPacked), to the next token.
    private static void prefill(LlamaModel model, NDManager manager, int[] prompt, int reps, String base) {
        int warm = 10; // the JIT and cuBLAS's first calls of these shapes stay out of the figure
        double[] ms = new double[reps + warm];
        int pages = (prompt.length + 16) / 16 + 1;
        for (int r = 0; r < ms.length; r++) {
            try (NDManager m = manager.newSubManager(); SequenceKvStore store = model.newPagedStore(pages, 16)) {
                store.addSequence(0);
                long[] l = Arrays.stream(prompt).asLongStream().toArray();
                long t = System.nanoTime();
                NDArray tokens = m.create(l); // [T]
                NDArray logits = model.forwardPacked(new ParameterStore(m, false), tokens, new long[] {0},
                        new int[] {prompt.length}, store); // [1, vocab]
                logits.argMax().getLong(); // the token a generator would pick: device work done
                ms[r] = (System.nanoTime() - t) / 1e6;
            }
        }
        double med = median(Arrays.copyOfRange(ms, warm, ms.length));
        System.err.println("prefill reps (ms): " + Arrays.toString(ms));
        // time to first token through Generator (store made, prompt prefilled, first token picked)
        Generator gen = new Generator(model, new IdTokenizer(), manager);
        GenerationConfig one = GenerationConfig.builder().optMaxNewTokens(1).optStopAtEos(false).build();
        double[] ttft = new double[reps + warm];
        for (int r = 0; r < ttft.length; r++) {
            long t = System.nanoTime();
            gen.generate(prompt, one, null);
            ttft[r] = (System.nanoTime() - t) / 1e6;
        }
        System.err.println("generate(1 token) reps (ms): " + Arrays.toString(ttft));
        System.out.printf(Locale.ROOT, "{%s,\"bench\":\"prefill\",\"batch\":1,\"prompt\":%d,\"ms\":%.3f,"
                + "\"ttft_generate_ms\":%.3f}%n", base, prompt.length, med,
                median(Arrays.copyOfRange(ttft, warm, ttft.length)));
    }

    // A long-running JVM's steady state: the launch path compiled by the JIT (a few thousand calls of each method)
    // and cuBLAS's first calls of these shapes done. The cold figures are printed, not hidden.
    private static void warmUp(LlamaModel model, NDManager manager, int[] prompt) {
        Generator gen = new Generator(model, new IdTokenizer(), manager);
        long t = System.nanoTime();
        GenerationResult r = gen.generate(prompt, GenerationConfig.builder().optMaxNewTokens(512)
                .optStopAtEos(false).build(), null);
        System.err.printf(Locale.ROOT, "warm-up (cold JVM): first prefill %.1f ms, 512 tokens at %.3f ms/token,"
                + " %.1f s in all%n", r.getPrefillNanos() / 1e6, r.getDecodeNanos() / 1e6 / 511,
                (System.nanoTime() - t) / 1e9);
    }

    private static void decode(LlamaModel model, NDManager manager, int[] prompt, int newTokens, String base) {
        Generator gen = new Generator(model, new IdTokenizer(), manager);
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(newTokens).optStopAtEos(false).build();
        gen.generate(Arrays.copyOf(prompt, 64), GenerationConfig.builder().optMaxNewTokens(8).build(), null); // warm
        double[] ms = new double[3];
        GenerationResult r = null;
        for (int i = 0; i < ms.length; i++) {
            r = gen.generate(prompt, cfg, null);
            ms[i] = r.getDecodeNanos() / 1e6 / (r.getTokenIds().length - 1);
        }
        System.out.printf(Locale.ROOT, "{%s,\"bench\":\"decode\",\"batch\":1,\"prompt\":%d,\"new_tokens\":%d,"
                + "\"ms_per_token\":%.3f,\"prefill_ms\":%.3f}%n", base, prompt.length, r.getTokenIds().length,
                median(ms), r.getPrefillNanos() / 1e6);
    }

    private static void batched(LlamaModel model, NDManager manager, int[][] prompts, int newTokens, String base) {
        int b = prompts.length;
        int pageSize = 16;
        int pages = b * ((prompts[0].length + newTokens + pageSize - 1) / pageSize) + 16;
        BatchGenerator gen = new BatchGenerator(model, new IdTokenizer(), manager, b,
                (mdl, m) -> mdl.newPagedStore(pages, pageSize));
        GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(newTokens).optStopAtEos(false).build();
        List<BatchRequest> reqs = new ArrayList<>();
        for (int[] p : prompts) {
            reqs.add(new BatchRequest(p, cfg, 0));
        }
        gen.generate(reqs.subList(0, Math.min(2, b)), null); // warm-up
        long t = System.nanoTime();
        List<GenerationResult> out = gen.generate(reqs, null);
        double s = (System.nanoTime() - t) / 1e9;
        long tokens = out.stream().mapToLong(r -> r.getTokenIds().length).sum();
        System.out.printf(Locale.ROOT, "{%s,\"bench\":\"batched\",\"batch\":%d,\"prompt\":%d,\"new_tokens\":%d,"
                + "\"s\":%.3f,\"tokens_per_s\":%.1f,\"steps\":%d%s}%n", base, b, prompts[0].length, newTokens, s,
                tokens / s, gen.getLastStats().getSteps(), deviceUsed(manager));
    }

    // ,"device_used_gib":X -- the device's memory in use after the run as the driver sees it (PyTorch's caching
    // allocator keeps its peak reserved, so about the run's peak), or "" off CUDA
    private static String deviceUsed(NDManager manager) {
        if (!manager.getDevice().isGpu()) {
            return "";
        }
        long used = DeviceMemory.inUse(manager.getDevice().getDeviceId())[0];
        return String.format(Locale.ROOT, ",\"device_used_gib\":%.2f", used / (double) (1L << 30));
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
