package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.kvcache.paged.PagedKvCache;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.cuda.FlashDispatch;
import org.flashdjl.ops.cuda.PagedDecodeKernel;
import org.flashdjl.ops.paged.PagedFixture;
import org.flashdjl.ops.paged.PagedPlan;
import org.flashdjl.ops.testing.Seeds;
import org.flashdjl.ops.transformer.TransformerOps;
import org.flashdjl.ops.transformer.TransformerOps.NormStyle;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Collectors;

/**
 * Bad input on the GPU (the item 6) gets a clear exception, naming the problem and what is allowed, before
 * anything reaches DJL or a kernel, and changes nothing: mixed devices (a CPU array among GPU ones) in
 * {@code Attention.forward}, {@code TransformerOps}, the paged path (plan, pools, cache writes) and the model (token
 * ids and parameter store on another device than the weights); head dims the kernels lack (refused by {@code flash}
 * and {@code cuda} naming the supported ones, run under {@code auto}); out of pages; bf16 wherever a dtype is
 * chosen.
 */
@Tag("gpu")
@Tag("djl")
@ExtendWith(Seeds.class)
class GpuBadInputTest {

    @TempDir
    static Path tmp;

    @RegisterExtension
    static final DjlManagers MANAGERS = new DjlManagers(DjlGpu::assumeAllKernels);
    private static final String GPU = Device.gpu().toString();
    private static final String CPU = Device.cpu().toString();

    @Test
    void attentionRefusesMixedDevices() {
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager()) {
            NDArray q = BadInput.zeros16(g, 1, 4, 8, 64);
            NDArray kv = BadInput.zeros16(g, 1, 2, 8, 64);
            NDArray kvCpu = BadInput.zeros16(c, 1, 2, 8, 64);
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
            for (String backend : new String[] {"flash", "auto", "online"}) {
                BadInput.assertRefused("Attention.forward, " + backend + ", CPU key", () -> Attention.forward(q, kvCpu,
                        kv, spec, backend), "query is on " + GPU, "key is on " + CPU, "one device");
                BadInput.assertRefused("Attention.forward, " + backend + ", CPU value", () -> Attention.forward(q, kv,
                        kvCpu, spec, backend), "query is on " + GPU, "value is on " + CPU, "one device");
            }
            NDArray packed = BadInput.zeros16(g, 9, 4, 64);
            NDArray packedKv = BadInput.zeros16(c, 9, 2, 64);
            BadInput.assertRefused("Attention.forwardVarlen, flash, CPU keys", () -> Attention.forwardVarlen(packed,
                    packedKv, packedKv, g.create(new int[] {0, 4, 9}), g.create(new int[] {0, 4, 9}), spec, "flash"),
                    "query is on " + GPU, "key is on " + CPU);
        }
    }

    @Test
    void transformerOpsRefuseMixedDevicesAndChangeNothing() {
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager()) {
            float[] values = new float[3 * 64];
            Random rnd = new Random(1);
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) rnd.nextGaussian();
            }
            NDArray residual = g.create(values, new Shape(3, 64)).toType(DataType.FLOAT16, false);
            float[] before = NdArrayAttention.floats(residual);
            NDArray weightCpu = c.ones(new Shape(64), DataType.FLOAT16);
            NDArray deltaCpu = BadInput.zeros16(c, 3, 64);
            NDArray weight = g.ones(new Shape(64), DataType.FLOAT16);
            BadInput.assertRefused("rmsNorm, CPU weight", () -> TransformerOps.rmsNorm(residual, weightCpu, 1e-5f,
                    NormStyle.LLAMA), "weight is on " + CPU, "x is on " + GPU);
            BadInput.assertRefused("addRmsNorm, CPU delta", () -> TransformerOps.addRmsNorm(residual, deltaCpu, weight,
                    1e-5f, NormStyle.LLAMA), "delta is on " + CPU, "x is on " + GPU);
            assertArrayEquals(before, NdArrayAttention.floats(residual), "the residual after the refused addRmsNorm");
            int hq = 4;
            int hkv = 2;
            int d = 64;
            NDArray qkv = BadInput.zeros16(g, 5, (hq + 2 * hkv) * d);
            NDArray kDst = BadInput.zeros16(g, 8, hkv, d);
            NDArray vDst = BadInput.zeros16(g, 8, hkv, d);
            NDArray invFreq = g.ones(new Shape(d / 2));
            NDArray positions = g.create(new int[] {0, 1, 2, 3, 4});
            BadInput.assertRefused("ropeStore, CPU positions", () -> TransformerOps.ropeStore(qkv, hq, hkv,
                    c.create(new int[] {0, 1, 2, 3, 4}), invFreq, 1f, null, kDst, vDst), "positions is on " + CPU,
                    "qkv is on " + GPU);
            BadInput.assertRefused("ropeStore, CPU key slots", () -> TransformerOps.ropeStore(qkv, hq, hkv, positions,
                    invFreq, 1f, null, BadInput.zeros16(c, 8, hkv, d), vDst), "kDst is on " + CPU, "qkv is on " + GPU);
            BadInput.assertRefused("ropeStore, CPU slots", () -> TransformerOps.ropeStore(qkv, hq, hkv, positions,
                    invFreq, 1f, c.create(new int[] {0, 1, 2, 3, 4}), kDst, vDst), "slots is on " + CPU);
        }
    }

    @Test
    void pagedPathRefusesMixedDevices() {
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager()) {
            Random rnd = new Random(3);
            PagedFixture onGpu = PagedFixture.create(g, rnd, 16, 2, 64, new int[] {17, 5}, 1, DataType.FLOAT16);
            PagedFixture onCpu = PagedFixture.create(c, rnd, 16, 2, 64, new int[] {17, 5}, 1, DataType.FLOAT16);
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
            try (PagedPlan plan = PagedPlan.builder(onGpu.table).setQueryHeads(8).setKvHeads(2).setHeadDim(64)
                    .optDevice(Device.gpu()).build()) {
                NDArray q = BadInput.zeros16(g, 2, 8, 64);
                BadInput.assertRefused("paged forward, CPU key pages", () -> plan.forward(q, onCpu.kPages,
                        onGpu.vPages, spec), "q is on " + GPU, "kPages is on " + CPU);
                BadInput.assertRefused("paged forward, CPU value pages", () -> plan.forward(q, onGpu.kPages,
                        onCpu.vPages, spec), "q is on " + GPU, "vPages is on " + CPU);
                BadInput.assertRefused("paged forward, CPU queries and pools on a GPU plan", () -> plan.forward(
                        BadInput.zeros16(c, 2, 8, 64), onCpu.kPages, onCpu.vPages, spec), "q is on " + CPU,
                        "the plan was built for " + GPU);
            }
            try (PagedKvCache cache = PagedKvCache.builder().setNumPages(4).setPageSize(16).setKvHeads(2)
                    .setHeadDim(64).optDataType(DataType.FLOAT16).optDevice(Device.gpu()).build()) {
                long seq = cache.addSequence();
                BadInput.assertRefused("PagedKvCache.append, CPU keys", () -> cache.append(seq,
                        BadInput.zeros16(c, 3, 2, 64), BadInput.zeros16(g, 3, 2, 64)), "keys[0] is on " + CPU,
                        "the cache is on " + GPU);
                assertEquals(0, cache.getSequenceLength(seq), "sequence length after the refused append");
                assertEquals(4, cache.getFreePageCount(), "free pages after the refused append");
            }
        }
    }

    @Test
    void theModelRefusesTokensOrAParameterStoreOnAnotherDevice() throws Exception {
        try (NDManager g = MANAGERS.gpu().newSubManager(); NDManager c = MANAGERS.cpu().newSubManager()) {
            LlamaModel model = ModelCheck.load(ModelCheck.write(tmp.resolve("ckpt"), 5), g, DataType.FLOAT16);
            NDArray cpuTokens = c.create(new long[] {256, 72, 105}, new Shape(1, 3));
            NDArray gpuTokens = g.create(new long[] {256, 72, 105}, new Shape(1, 3));
            BadInput.assertRefused("forward, CPU token ids", () -> model.forward(new ParameterStore(g, false),
                    cpuTokens, null, false), "token ids are on " + CPU, "weights are on " + GPU);
            BadInput.assertRefused("forward, parameter store on the CPU", () -> model.forward(
                    new ParameterStore(c, false), gpuTokens, null, false), "parameter store's manager on " + CPU,
                    "weights are on " + GPU);
            try (SequenceKvStore store = model.newPagedStore(4, 16)) {
                store.addSequence(0);
                BadInput.assertRefused("forwardPacked, CPU token ids", () -> model.forwardPacked(
                        new ParameterStore(g, false), c.create(new long[] {256, 72, 105}), new long[] {0},
                        new int[] {3}, store), "token ids are on " + CPU, "weights are on " + GPU);
                assertEquals(0, store.length(0), "the store's sequence after the refused step: nothing reserved");
                NDArray logits = model.forwardPacked(new ParameterStore(g, false), g.create(new long[] {256, 72, 105}),
                        new long[] {0}, new int[] {3}, store);
                assertEquals(new Shape(1, model.getConfig().getVocabSize()), logits.getShape(), "the next step runs");
                assertEquals(3, store.length(0));
            }
        }
    }

    @Test
    void flashAndCudaRefuseHeadDimsTheyLackNamingTheSupportedOnes() {
        try (NDManager g = MANAGERS.gpu().newSubManager()) {
            for (int d : new int[] {80, 40}) {
                NDArray q = BadInput.zeros16(g, 1, 4, 8, d);
                NDArray kv = BadInput.zeros16(g, 1, 2, 8, d);
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> Attention.forward(q, kv, kv, AttentionSpec.builder().build(), "flash"), "head dim " + d);
                assertTrue(e.getMessage().contains("head dim " + d + " not supported by flash; supported: "
                        + list(FlashDispatch.headDims().stream().mapToInt(Integer::intValue).toArray())),
                        e.getMessage());
                PagedFixture f = PagedFixture.create(g, new Random(d), 16, 2, d, new int[] {9}, 0, DataType.FLOAT16);
                UnsupportedOperationException p = assertThrows(UnsupportedOperationException.class,
                        () -> PagedPlan.builder(f.table).setQueryHeads(4).setKvHeads(2).setHeadDim(d)
                                .optDevice(Device.gpu()).optBackend("cuda").build().close(), "paged head dim " + d);
                assertTrue(p.getMessage().contains("head dim " + d + " not supported by the paged decode kernels;"
                        + " supported: " + list(PagedDecodeKernel.HEAD_DIMS)), p.getMessage());
            }
        }
    }

    private static String list(int[] values) {
        return Arrays.stream(values).mapToObj(String::valueOf).collect(Collectors.joining(", "));
    }

    @Test
    void headDimsWithoutKernelsFallBackUnderAuto() {
        BadInput.headDimsWithoutKernelsFallBackUnderAuto(MANAGERS.gpu(), Seeds.next());
    }

    @Test
    void outOfPagesNamesTheNumbersAndChangesNothing() {
        BadInput.outOfPagesNamesTheNumbersAndChangesNothing(Device.gpu());
    }

    @Test
    void bf16IsRefusedByName() throws Exception {
        try (NDManager g = MANAGERS.gpu().newSubManager()) {
            BadInput.bf16IsRefusedByName(g, ModelCheck.write(tmp.resolve("bf16"), 6));
        }
    }
}
