package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.engine.cache.PagedSequenceKvStore;
import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.ByteTokenizer;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Memory on the GPU (the item 5): 10,000 greedy decode steps of the small test model ({@link ModelCheck})
 * through {@code Generator} (paged store, fused kernels, paged decode) leave the model manager's NDArray count
 * exactly flat and the device memory in use flat; the paged store's KV bytes are what the config implies; with
 * {@code -Dflashdjl.hf1b.dir} (the Llama-3.2-1B-shaped checkpoint of {@code tests/gpu/hf_model_bench.py}) the
 * device memory of that model at a 4k context is printed.
 *
 * <p>Device memory is read from the driver ({@code cuMemGetInfo}: total - free). PyTorch's caching allocator keeps
 * freed blocks reserved for reuse, so the figure is what the allocator holds (its high-water mark, roughly), not
 * what live tensors use: it rises while the first steps fill the allocator's pools and must then stay flat; a leak
 * of device tensors shows as a trend the allocator cannot absorb.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class GpuMemoryTest {

    /** Decode steps ({@code -Dflashdjl.gpu.memoryTokens}; default 10,000, 2,000 with {@code flashdjl.gpu.quick}). */
    static final int TOKENS = Integer.getInteger("flashdjl.gpu.memoryTokens", GpuCheck.QUICK ? 2_000 : 10_000);

    /** The first sample, after warm-up (allocator pools, JIT). */
    static final int WARM = TOKENS / 10;

    /** Tokens between samples. */
    static final int SAMPLE = TOKENS / 10;

    /**
     * Allowed growth of the device memory in use from token {@link #WARM} to the end. A step allocates a few MiB
     * at most and frees it (the allocator reuses the blocks): a leak of one 4 KiB tensor per token would add
     * about 35 MiB over 9,000 tokens, rounded up by the allocator's 2 MiB segments to much more.
     */
    static final long DEVICE_TOLERANCE = 32L << 20;

    @TempDir
    Path tmp;

    @BeforeEach
    void requireGpu() {
        DjlGpu.assumeAllKernels();
    }

    @Test
    void tenThousandDecodeStepsLeaveArraysAndDeviceMemoryFlat() throws Exception {
        int device = Device.gpu().getDeviceId();
        long seed = Seeds.next();
        Path dir = ModelCheck.write(tmp.resolve("ckpt"), seed);
        long[] start = DeviceMemory.inUse(device);
        try (NDManager modelManager = NDManager.newBaseManager(Device.gpu())) {
            LlamaModel model = ModelCheck.load(dir, modelManager, DataType.FLOAT16);
            int before = modelManager.getManagedArrays().size();
            Generator gen = new Generator(model, new ByteTokenizer(), modelManager);
            // a short generation first: kernel modules and long-lived workspaces exist from then on
            gen.generate(ModelCheck.prompt(new Random(seed), 9), GenerationConfig.builder().optMaxNewTokens(16)
                    .optStopAtEos(false).build(), e -> { });
            long buffersBefore = DeviceBuffer.liveBytes();
            GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(TOKENS).optStopAtEos(false).build();
            List<long[]> samples = new ArrayList<>(); // {token, arrays, device bytes in use, FlashDJL's buffers}
            long t0 = System.nanoTime();
            GenerationResult r = gen.generate(ModelCheck.prompt(new Random(seed), 9), cfg, e -> {
                if (e.getIndex() >= WARM && e.getIndex() % SAMPLE == 0) {
                    samples.add(new long[] {e.getIndex(), modelManager.getManagedArrays().size(),
                        DeviceMemory.inUse(device)[0], DeviceBuffer.liveBytes()});
                }
            });
            long ms = (System.nanoTime() - t0) / 1_000_000;
            long[] end = DeviceMemory.inUse(device);
            StringBuilder trace = new StringBuilder();
            long low = Long.MAX_VALUE;
            long high = 0;
            for (long[] x : samples) {
                trace.append(String.format(Locale.ROOT, "%n  token %6d: %6d arrays, device in use %s, FlashDJL"
                        + " buffers %d bytes", x[0], x[1], DjlGpu.mib(x[2]), x[3]));
                low = Math.min(low, x[2]);
                high = Math.max(high, x[2]);
            }
            String report = String.format(Locale.ROOT, "%d greedy tokens on %s in %d ms (%.3f ms/token); device"
                    + " memory in use (driver, total %s): %s before the model, %s after the generation; KV store %s;"
                    + " weights seed %d%s", r.getTokenIds().length, Device.gpu(), ms, ms / (double) TOKENS,
                    DjlGpu.mib(start[1]), DjlGpu.mib(start[0]), DjlGpu.mib(end[0]), DjlGpu.mib(r.getKvBytes()),
                    seed, trace);
            System.out.println(report);
            assertEquals(TOKENS, r.getTokenIds().length, "tokens generated\n" + report);
            assertEquals(TOKENS, samples.get(samples.size() - 1)[0], "the last sample\n" + report);
            for (long[] x : samples) {
                assertEquals(samples.get(0)[1], x[1], "NDArrays under the model's manager at token " + x[0]
                        + " vs token " + samples.get(0)[0] + "\n" + report);
            }
            // during a step its own page table and split-KV partials are live (they grow with the context: more
            // splits); once the generation is over, every buffer it allocated must be freed
            assertEquals(buffersBefore, DeviceBuffer.liveBytes(), "FlashDJL's live device buffers"
                    + " (DeviceBuffer.liveBytes) before vs after the generation\n" + report);
            assertEquals(before, modelManager.getManagedArrays().size(), "NDArrays under the model's manager"
                    + " before vs after the generation\n" + report);
            assertTrue(high - low <= DEVICE_TOLERANCE, "device memory in use moved by " + DjlGpu.mib(high - low)
                    + " between tokens " + WARM + " and " + TOKENS + " (allowed " + DjlGpu.mib(DEVICE_TOLERANCE)
                    + ")\n" + report);
        }
    }

    @Test
    void pagedKvBytesAreWhatTheConfigImplies() throws Exception {
        int device = Device.gpu().getDeviceId();
        int pages = 256;
        int pageSize = 16;
        long tokens = (long) pages * pageSize;
        // {layers, kv heads, head dim}: the test model and the Llama-3.2-1B shape
        int[][] shapes = {{2, 2, 64}, {16, 8, 64}};
        for (int[] s : shapes) {
            long implied = 2L * s[0] * s[1] * s[2] * 2 * tokens; // K and V x layers x kvHeads x headDim x fp16
            long before = DeviceMemory.inUse(device)[0];
            try (PagedSequenceKvStore store = PagedSequenceKvStore.create(s[0], s[1], s[2], DataType.FLOAT16,
                    Device.gpu(), pages, pageSize, "auto")) {
                long after = DeviceMemory.inUse(device)[0];
                String line = String.format(Locale.ROOT, "paged KV store, %d layers x %d KV heads x head dim %d,"
                        + " %d tokens (%d pages of %d), fp16: config implies %s, store holds %s, device memory in use"
                        + " grew by %s (the caching allocator may reuse blocks it already holds)", s[0], s[1], s[2],
                        tokens, pages, pageSize, DjlGpu.mib(implied), DjlGpu.mib(store.memoryBytes()),
                        DjlGpu.mib(after - before));
                System.out.println(line);
                assertEquals(implied, store.memoryBytes(), line);
                // PyTorch's caching allocator serves 1..10 MiB requests from 20 MiB segments: up to one spare
                assertTrue(after - before <= implied + (24L << 20), "more device memory than the pools need: "
                        + line);
            }
        }
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            LlamaModel model = ModelCheck.load(ModelCheck.write(tmp.resolve("ckpt"), 1), m, DataType.FLOAT16);
            LlamaConfig c = model.getConfig();
            try (SequenceKvStore store = model.newPagedStore(pages, pageSize)) {
                long implied = 2L * c.getNumLayers() * c.getNumKvHeads() * c.getHeadDim() * 2 * tokens;
                assertEquals(implied, store.memoryBytes(), "the model's paged store of " + tokens + " tokens");
                assertEquals(implied, model.kvBytesPerToken() * tokens, "kvBytesPerToken x " + tokens + " tokens");
            }
        }
    }

    @Test
    void oneBillionModelAtA4kContext() throws Exception {
        String d = System.getProperty("flashdjl.hf1b.dir");
        Assumptions.assumeTrue(d != null && Files.isRegularFile(Paths.get(d, "config.json")),
                () -> "no -Dflashdjl.hf1b.dir with a checkpoint (tests/gpu/hf_model_bench.py write DIR)");
        int device = Device.gpu().getDeviceId();
        long start = DeviceMemory.inUse(device)[0];
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            LlamaModel model = LlamaLoader.load(Paths.get(d), m, AttentionOptions.defaults(), DataType.FLOAT16);
            long loaded = DeviceMemory.inUse(device)[0];
            int prompt = 4096 - 128;
            int[] ids = new int[prompt];
            Random rnd = new Random(7);
            for (int i = 0; i < ids.length; i++) {
                ids[i] = rnd.nextInt(model.getConfig().getVocabSize());
            }
            GenerationResult r = new Generator(model, new ModelBench.IdTokenizer(), m).generate(ids,
                    GenerationConfig.builder().optMaxNewTokens(128).optStopAtEos(false).build(), null);
            long after = DeviceMemory.inUse(device)[0];
            long implied = model.kvBytesPerToken() * 4096;
            String line = String.format(Locale.ROOT, "%s fp16 at a 4k context (%d prompt + 128 new tokens):"
                    + " device memory in use %s before, %s with the weights, %s after the generation (the caching"
                    + " allocator's high-water mark); KV store %s (config implies %s for 4096 tokens); prefill %.1f"
                    + " ms, decode %.2f ms/token", model.getConfig(), prompt, DjlGpu.mib(start), DjlGpu.mib(loaded),
                    DjlGpu.mib(after), DjlGpu.mib(r.getKvBytes()), DjlGpu.mib(implied), r.getPrefillNanos() / 1e6,
                    r.getDecodeNanos() / 1e6 / (r.getTokenIds().length - 1));
            System.out.println(line);
            assertEquals(implied, r.getKvBytes(), "KV bytes of the generator's paged store (4096 tokens = 256 pages"
                    + " of 16): " + line);
        }
    }
}
