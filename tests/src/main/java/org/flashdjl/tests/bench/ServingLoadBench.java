package org.flashdjl.tests.bench;

import ai.djl.Device;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import ai.djl.training.ParameterStore;
import ai.djl.util.cuda.CudaUtils;

import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.serving.LlamaServingTranslator;
import org.flashdjl.examples.serving.ServingConfig;
import org.flashdjl.examples.serving.ServingModelDir;
import org.flashdjl.examples.serving.ServingRequest;
import org.flashdjl.ops.cuda.DeviceBuffer;

import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Serving load benchmark, in process (no network): a model directory loaded through {@code Criteria} as DJL Serving
 * loads it; {@code --clients} concurrent clients x {@code --requests} requests each, of mixed prompt and output
 * lengths, every other one streamed, all greedy. Prints the single-request throughput (the same requests one at a
 * time: the one-request-at-a-time handler), the loaded throughput and its ratio, p50/p99 time to first token and
 * per output token (streamed requests), whether every answer equals its single-request answer, and the model
 * manager's array count, RSS and (GPU) device memory before and after (and after each of {@code --rounds} repeats of
 * the loaded run). Different answers are counted with the output token where each first differs: greedy decoding
 * in fp16 is not batch-invariant (the GEMMs' and split-KV attention's summation order depends on the batch), so a
 * near-tie can flip; a scheduling bug shows up as differences at the first tokens. Each first difference (up to 16)
 * is recomputed in one forward pass of the single answer's sequence: the two tokens' logit gap there must be below
 * 1e-3 in fp32 (else exit 1) and is reported in fp16.
 *
 * <pre>
 * ServingLoadBench [--model CKPT_OR_SERVING_DIR] [--device cpu|gpu] [--dtype float32|float16] [--clients 64]
 *                  [--requests 10] [--distinct 64] [--max-new-tokens 64] [--max-prompt-chars 120]
 *                  [--batch 64] [--batched-tokens 1024] [--rounds 1] [--seed 7]
 * </pre>
 *
 * Without {@code --model} it serves the demo checkpoint. A checkpoint directory (config.json + *.safetensors) is
 * turned into a serving directory (without libs/: FlashDJL is on this JVM's class path) in a temporary directory.
 */
public final class ServingLoadBench {

    private ServingLoadBench() {}

    /**
     * Runs the benchmark.
     *
     * @param args see the class comment
     * @throws Exception on failure
     */
    public static void main(String[] args) throws Exception {
        if (System.getProperty("ai.djl.pytorch.num_threads") == null) {
            System.setProperty("ai.djl.pytorch.num_threads", "1"); // the project's CPU default (docs/MODEL.md)
        }
        Path model = null;
        String device = "cpu";
        String dtype = "float32";
        int clients = 64;
        int perClient = 10;
        int distinct = 64;
        int maxNew = 64;
        int maxPromptChars = 120;
        int batch = 64;
        int batchedTokens = 1024;
        long seed = 7;
        int rounds = 1;
        for (int i = 0; i < args.length; i += 2) {
            String v = i + 1 < args.length ? args[i + 1] : null;
            if (v == null) {
                throw new IllegalArgumentException(args[i] + " needs a value");
            }
            switch (args[i]) {
                case "--model":
                    model = Paths.get(v);
                    break;
                case "--device":
                    device = v;
                    break;
                case "--dtype":
                    dtype = v;
                    break;
                case "--clients":
                    clients = Integer.parseInt(v);
                    break;
                case "--requests":
                    perClient = Integer.parseInt(v);
                    break;
                case "--distinct":
                    distinct = Integer.parseInt(v);
                    break;
                case "--max-new-tokens":
                    maxNew = Integer.parseInt(v);
                    break;
                case "--max-prompt-chars":
                    maxPromptChars = Integer.parseInt(v);
                    break;
                case "--batch":
                    batch = Integer.parseInt(v);
                    break;
                case "--batched-tokens":
                    batchedTokens = Integer.parseInt(v);
                    break;
                case "--rounds":
                    rounds = Integer.parseInt(v);
                    break;
                case "--seed":
                    seed = Long.parseLong(v);
                    break;
                default:
                    throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Device dev = "gpu".equals(device) ? Device.gpu() : Device.cpu();
        Path dir;
        if (model != null && Files.isRegularFile(model.resolve("serving.properties"))) {
            dir = model;
        } else {
            Path ckpt = model != null ? model : DemoCheckpoint.ensure(LoadedModel.defaultDemoDir());
            ServingConfig config = ServingConfig.builder().optMaxPromptTokens(maxPromptChars + 8)
                    .optMaxNewTokens(maxNew).optMaxRollingBatchSize(batch).optMaxNumBatchedTokens(batchedTokens)
                    .optDataType(dtype).optAdmissionTimeoutMillis(600_000).build();
            dir = ServingModelDir.write(Files.createTempDirectory("flashdjl-serving-bench").resolve("model"), ckpt,
                    config, false);
        }
        System.out.printf(Locale.ROOT, "serving load bench: %s on %s, %d clients x %d requests (%d distinct, prompts"
                + " <= %d chars, max_new_tokens <= %d), every other one streamed, greedy%n", dir, dev, clients,
                perClient, distinct, maxPromptChars, maxNew);
        Criteria<Input, Output> criteria = Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir)
                .optDevice(dev).build();
        try (ZooModel<Input, Output> zoo = criteria.loadModel()) {
            List<ServingLoad.Request> pool = ServingLoad.mixedRequests(distinct, maxPromptChars, maxNew, seed);
            ServingLoad.run(zoo, pool.subList(0, Math.min(4, distinct)), 1); // load the weights, warm up
            System.out.println("config    : " + ((LlamaServingTranslator) zoo.getTranslator()).getConfig());
            ServingLoad.Result single = ServingLoad.run(zoo, pool, 1);
            System.out.println("single    : " + single);
            int arraysBefore = ServingLoad.managedArrays(zoo);
            long rssBefore = ServingLoad.rssBytes();
            long devBefore = deviceBytes(dev);
            List<ServingLoad.Request> load = new ArrayList<>();
            for (int i = 0; i < clients * perClient; i++) {
                load.add(pool.get(i % distinct).withStream(i % 2 == 1));
            }
            ServingLoad.Result loaded = null;
            int mismatches = 0;
            int errors = 0;
            List<Integer> divergeAt = new ArrayList<>(); // first output token that differs, per mismatch
            List<int[]> firstDiffs = new ArrayList<>(); // {distinct index, output token k, single's, batched} once
            for (int round = 1; round <= rounds; round++) {
                loaded = ServingLoad.run(zoo, load, clients);
                System.out.println("loaded    : " + (rounds > 1 ? "round " + round + ": " : "") + loaded);
                for (int i = 0; i < load.size(); i++) {
                    int[] want = single.tokens[i % distinct];
                    int[] got = loaded.tokens[i];
                    if (loaded.codes[i] != 200) {
                        errors++;
                    } else if (!Arrays.equals(want, got)) {
                        mismatches++;
                        int k = 0;
                        while (k < Math.min(want.length, got.length) && want[k] == got[k]) {
                            k++;
                        }
                        divergeAt.add(k);
                        int[] diff = {i % distinct, k, k < want.length ? want[k] : -1, k < got.length ? got[k] : -1};
                        if (diff[2] >= 0 && diff[3] >= 0 && firstDiffs.stream().noneMatch(x -> Arrays.equals(x, diff))) {
                            firstDiffs.add(diff);
                        }
                    }
                }
                if (rounds > 1) {
                    System.out.printf(Locale.ROOT, "memory    : after round %d: model manager arrays %d, RSS %d MiB%s%n",
                            round, ServingLoad.managedArrays(zoo), ServingLoad.rssBytes() >> 20, deviceMemory(dev));
                }
            }
            int total = rounds * load.size();
            System.out.printf(Locale.ROOT, "speedup   : %.2fx output tokens/s over one request at a time%n",
                    loaded.tokensPerSecond() / single.tokensPerSecond());
            System.out.printf(Locale.ROOT, "answers   : %d of %d equal their single-request answer, %d not 200%n",
                    total - mismatches - errors, total, errors);
            if (!divergeAt.isEmpty()) {
                divergeAt.sort(null);
                System.out.printf(Locale.ROOT, "diverge   : the %d different answers first differ at output token"
                        + " min %d / median %d / max %d (%d at the first token)%n", divergeAt.size(),
                        divergeAt.get(0), divergeAt.get(divergeAt.size() / 2), divergeAt.get(divergeAt.size() - 1),
                        divergeAt.stream().filter(k -> k == 0).count());
            }
            System.out.printf(Locale.ROOT, "memory    : model manager arrays %d -> %d, RSS %d -> %d MiB%s%n",
                    arraysBefore, ServingLoad.managedArrays(zoo), rssBefore >> 20, ServingLoad.rssBytes() >> 20,
                    dev.isGpu() ? String.format(Locale.ROOT, ", device in use %d MiB before", devBefore >> 20)
                            + deviceMemory(dev) : "");
            LlamaServingTranslator translator = (LlamaServingTranslator) zoo.getTranslator();
            System.out.println("scheduler : " + translator.getStats());
            // A difference is a near tie when the two tokens' logits, recomputed in one forward of the sequence,
            // are closer than the dtype's noise; fp32 differences must be near ties.
            double tolerance = "float32".equals(dtype) ? 1e-3 : 0.1;
            int notTies = firstDiffs.isEmpty() ? 0 : nearTies(dir, dev, translator.getConfig(), pool, single,
                    firstDiffs, tolerance);
            if (errors > 0 || ("float32".equals(dtype) && notTies > 0)) {
                System.exit(1);
            }
        }
    }

    /**
     * Recomputes, for each first difference, the logits of the single-request sequence up to it in one forward
     * pass, and prints how far apart the single answer's and the batched answer's tokens are there.
     *
     * @return how many differences are not near ties (logit gap above the tolerance)
     */
    private static int nearTies(Path dir, Device dev, ServingConfig config, List<ServingLoad.Request> pool,
            ServingLoad.Result single, List<int[]> diffs, double tolerance) throws Exception {
        List<Double> gaps = new ArrayList<>();
        try (LoadedModel lm = LoadedModel.load(dir, dev, AttentionOptions.defaults(), config.getDataType(dev))) {
            for (int[] d : diffs.subList(0, Math.min(16, diffs.size()))) {
                int[] prompt = ServingRequest.parse(pool.get(d[0]).body(), lm.getTokenizer(), config).getPromptIds();
                long[] ids = new long[prompt.length + d[1]]; // the prompt and the common output prefix
                for (int i = 0; i < prompt.length; i++) {
                    ids[i] = prompt[i];
                }
                for (int i = 0; i < d[1]; i++) {
                    ids[prompt.length + i] = single.tokens[d[0]][i];
                }
                try (NDManager m = lm.getManager().newSubManager()) {
                    float[] logits = lm.getModel().forward(new ParameterStore(m, false),
                            m.create(ids, new Shape(1, ids.length)), null, true).toType(DataType.FLOAT32, false)
                            .toFloatArray(); // [V] of the last position
                    gaps.add((double) Math.abs(logits[d[2]] - logits[d[3]]));
                }
            }
        }
        List<Double> sorted = new ArrayList<>(gaps);
        sorted.sort(null);
        long above = gaps.stream().filter(g -> g > tolerance).count();
        System.out.printf(Locale.ROOT, "near ties : %d first differences recomputed in one forward pass: |logit(single's"
                + " token) - logit(batched token)| median %.2g, max %.2g; %d above %.0e%n", gaps.size(),
                sorted.get(sorted.size() / 2), sorted.get(sorted.size() - 1), above, tolerance);
        return (int) above;
    }

    /**
     * The device memory in use (driver's view: PyTorch's caching allocator included), then in use after the
     * allocator's cache is emptied (live tensors), and FlashDJL's own live device buffers.
     */
    private static String deviceMemory(Device dev) {
        if (!dev.isGpu()) {
            return "";
        }
        long cached = deviceBytes(dev);
        try { // the PyTorch engine is a runtime dependency here: its JniUtils through reflection
            Class.forName("ai.djl.pytorch.jni.JniUtils").getMethod("emptyCudaCache").invoke(null);
        } catch (ReflectiveOperationException e) {
            return String.format(Locale.ROOT, ", device in use %d MiB (cannot empty the engine's cache: %s)",
                    cached >> 20, e);
        }
        return String.format(Locale.ROOT, ", device in use %d MiB (%d MiB after emptying PyTorch's cache;"
                + " FlashDJL buffers %d KiB)", cached >> 20, deviceBytes(dev) >> 20, DeviceBuffer.liveBytes() >> 10);
    }

    private static long deviceBytes(Device dev) {
        if (!dev.isGpu() || !CudaUtils.hasCuda()) {
            return 0;
        }
        MemoryUsage m = CudaUtils.getGpuMemory(dev);
        return m.getCommitted();
    }
}
