package org.flashdjl.kvcache.paged;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.paged.PagedAttention;
import org.flashdjl.ops.paged.PagedPlan;
import org.flashdjl.ops.testing.Reference;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The cache and paged attention together, as a model drives them: chunked prefill, mixed prefill + decode steps,
 * decode, fork and free, over two layers with poisoned (NaN) free pages; every step's output equals the contiguous
 * {@link Attention} over the tokens appended so far. Fork, copy-on-write and free leave the other sequences'
 * outputs bit-identical.
 */
@ExtendWith(Seeds.class)
class PagedKvCacheAttentionTest {

    private static final int HQ = 8;
    private static final int HKV = 2;
    private static final int D = 32;
    private static final int LAYERS = 2;

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** Host copies of every sequence's K and V per layer, [L, Hkv, D] flat. */
    static final class Mirror {
        final Map<Long, float[][]> keys = new HashMap<>();
        final Map<Long, float[][]> values = new HashMap<>();

        void add(long id) {
            keys.put(id, new float[LAYERS][0]);
            values.put(id, new float[LAYERS][0]);
        }

        void fork(long parent, long child) {
            keys.put(child, Arrays.stream(keys.get(parent)).map(float[]::clone).toArray(float[][]::new));
            values.put(child, Arrays.stream(values.get(parent)).map(float[]::clone).toArray(float[][]::new));
        }

        static float[] concat(float[] a, float[] b) {
            float[] c = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, c, a.length, b.length);
            return c;
        }
    }

    /** One step: reserve for all sequences, write every layer, attend every layer, check against contiguous. */
    static void step(NDManager m, Random rnd, PagedKvCache cache, Mirror mirror, long[] ids, int[] counts,
            AttentionSpec spec) {
        int row = HKV * D;
        int total = Arrays.stream(counts).sum();
        try (SlotMapping slots = cache.reserve(ids, counts)) {
            for (int l = 0; l < LAYERS; l++) {
                float[] k = Reference.randn(rnd, total * row);
                float[] v = Reference.randn(rnd, total * row);
                cache.write(l, slots, m.create(k, new Shape(total, HKV, D)), m.create(v, new Shape(total, HKV, D)));
                int t = 0;
                for (int i = 0; i < ids.length; i++) {
                    float[] kn = Arrays.copyOfRange(k, t * row, (t + counts[i]) * row);
                    float[] vn = Arrays.copyOfRange(v, t * row, (t + counts[i]) * row);
                    mirror.keys.get(ids[i])[l] = Mirror.concat(mirror.keys.get(ids[i])[l], kn);
                    mirror.values.get(ids[i])[l] = Mirror.concat(mirror.values.get(ids[i])[l], vn);
                    t += counts[i];
                }
            }
        }
        int[] qo = new int[ids.length + 1];
        for (int i = 0; i < ids.length; i++) {
            qo[i + 1] = qo[i] + counts[i];
        }
        boolean decode = Arrays.stream(counts).allMatch(c -> c == 1);
        try (PagedPlan plan = PagedPlan.builder(cache.pageTable(ids)).optQoIndptr(qo).setQueryHeads(HQ)
                .setKvHeads(HKV).setHeadDim(D).optDevice(m.getDevice()).build()) {
            for (int l = 0; l < LAYERS; l++) {
                NDArray q = m.randomNormal(new Shape(total, HQ, D));
                AttentionOutput out = decode
                        ? PagedAttention.decode(q, cache.getKeyPages(l), cache.getValuePages(l), cache.pageTable(ids),
                                spec)
                        : plan.forward(q, cache.getKeyPages(l), cache.getValuePages(l), spec);
                for (int i = 0; i < ids.length; i++) {
                    if (counts[i] == 0) {
                        continue;
                    }
                    int len = cache.getSequenceLength(ids[i]);
                    NDArray qb = q.get(new NDIndex("{}:{}", qo[i], qo[i + 1])).expandDims(0);
                    NDArray kb = m.create(mirror.keys.get(ids[i])[l], new Shape(1, len, HKV, D));
                    NDArray vb = m.create(mirror.values.get(ids[i])[l], new Shape(1, len, HKV, D));
                    AttentionOutput dense = Attention.forward(qb, kb, vb,
                            spec.toBuilder().optLayout(QkvLayout.BSHD).build(), "math");
                    double err = Reference.maxAbsDiff(
                            Reference.toDoubles(out.getOutput().get(new NDIndex("{}:{}", qo[i], qo[i + 1]))),
                            Reference.toDoubles(dense.getOutput()));
                    assertTrue(err <= 2e-5, "layer " + l + " sequence " + ids[i] + " (" + counts[i] + " queries, "
                            + len + " keys): paged vs contiguous " + err);
                    double lseErr = Reference.maxAbsDiff(
                            Reference.toDoubles(out.getLse().get(new NDIndex("{}:{}", qo[i], qo[i + 1]))),
                            Reference.toDoubles(dense.getLse().get(new NDIndex("0")))); // bshd: [Lq, Hq]
                    assertTrue(lseErr <= 1e-4, "LSE " + lseErr);
                }
            }
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        String[] options = {"causal", "all", "causal+window+sinks", "alibi"};
        int n = 0;
        for (int pageSize : new int[] {1, 7, 16, 64}) {
            cases.add(Arguments.of(pageSize, options[n++ % options.length]));
        }
        return cases.stream();
    }

    static AttentionSpec spec(String option) {
        AttentionSpec.Builder b = AttentionSpec.builder().optCausal(true).optReturnLse(true);
        float[] slopes = new float[HQ];
        for (int h = 0; h < HQ; h++) {
            slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / HQ);
        }
        switch (option) {
            case "all":
                return b.optWindowBounds(9, 0).optSinkTokens(2).optAlibiSlopes(slopes).optSoftcap(3f).build();
            case "causal+window+sinks":
                return b.optWindowBounds(7, -1).optSinkTokens(3).build();
            case "alibi":
                return b.optAlibiSlopes(slopes).build();
            default:
                return b.build();
        }
    }

    @ParameterizedTest(name = "page size {0}, {1}")
    @MethodSource("cases")
    void prefillChunksDecodeForkAndFreeMatchContiguousAttention(int pageSize, String option) {
        Random rnd = new Random(Seeds.next());
        AttentionSpec spec = spec(option);
        try (NDManager m = manager.newSubManager();
                PagedKvCache cache = PagedKvCache.builder().setNumPages(160 / pageSize + 12).setPageSize(pageSize)
                        .setKvHeads(HKV).setHeadDim(D).optNumLayers(LAYERS).optPoisonFreedPages(true).build()) {
            Mirror mirror = new Mirror();
            long a = cache.addSequence();
            long b = cache.addSequence();
            long c = cache.addSequence();
            for (long id : new long[] {a, b, c}) {
                mirror.add(id);
            }
            step(m, rnd, cache, mirror, new long[] {a, b, c}, new int[] {20, 7, 1}, spec); // prefill chunks
            step(m, rnd, cache, mirror, new long[] {a, b, c}, new int[] {17, 1, 1}, spec); // chunk 2 + decodes
            step(m, rnd, cache, mirror, new long[] {a, b, c}, new int[] {1, 1, 1}, spec); // decode
            long d = cache.fork(a); // shares a's 38 tokens
            mirror.fork(a, d);
            cache.free(b);
            step(m, rnd, cache, mirror, new long[] {a, d, c}, new int[] {1, 3, 1}, spec); // copy-on-write
            step(m, rnd, cache, mirror, new long[] {d, a}, new int[] {1, 1}, spec);
            long e = cache.addSequence(); // reuses b's freed (NaN) pages
            mirror.add(e);
            step(m, rnd, cache, mirror, new long[] {e, c, a}, new int[] {13, 0, 2}, spec);
            step(m, rnd, cache, mirror, new long[] {a, c, d, e}, new int[] {1, 1, 1, 1}, spec);
        }
    }

    /** Per-sequence decode output for fixed queries, as raw floats. */
    static float[][] decodeEach(PagedKvCache cache, long[] ids, NDArray[] queries, AttentionSpec spec) {
        float[][] out = new float[ids.length * LAYERS][];
        for (int i = 0; i < ids.length; i++) {
            for (int l = 0; l < LAYERS; l++) {
                try (AttentionOutput o = PagedAttention.decode(queries[i], cache.getKeyPages(l),
                        cache.getValuePages(l), cache.pageTable(ids[i]), spec)) {
                    out[i * LAYERS + l] = Mirror.concat(o.getOutput().toFloatArray(), o.getLse().toFloatArray());
                }
            }
        }
        return out;
    }

    @Test
    void forkCopyOnWriteAndFreeKeepOtherSequencesBitIdentical() {
        Random rnd = new Random(Seeds.next());
        AttentionSpec spec = spec("all");
        try (NDManager m = manager.newSubManager();
                PagedKvCache cache = PagedKvCache.builder().setNumPages(24).setPageSize(8).setKvHeads(HKV)
                        .setHeadDim(D).optNumLayers(LAYERS).optPoisonFreedPages(true).build()) {
            Mirror mirror = new Mirror();
            long a = cache.addSequence();
            long b = cache.addSequence();
            mirror.add(a);
            mirror.add(b);
            step(m, rnd, cache, mirror, new long[] {a, b}, new int[] {21, 30}, spec);
            NDArray[] queries = {m.randomNormal(new Shape(1, HQ, D)), m.randomNormal(new Shape(1, HQ, D))};
            long[] ab = {a, b}; // reassigned to a snapshot fork of a once a grows
            float[][] before = decodeEach(cache, ab, queries, spec);
            long c = cache.fork(a);
            mirror.fork(a, c);
            assertArrayEquals(before, decodeEach(cache, ab, queries, spec), "after fork");
            step(m, rnd, cache, mirror, new long[] {c}, new int[] {5}, spec); // the child copies a's partial page
            assertArrayEquals(before, decodeEach(cache, ab, queries, spec), "after the child's copy-on-write");
            // the parent now writes the rows the child wrote in its copy: the child must not see them
            NDArray[] qc = {m.randomNormal(new Shape(1, HQ, D))};
            float[][] childAfterWrite = decodeEach(cache, new long[] {c}, qc, spec);
            long a2 = cache.fork(a); // keep a's 21-token state for the checks below
            mirror.fork(a, a2);
            step(m, rnd, cache, mirror, new long[] {a}, new int[] {3}, spec);
            assertArrayEquals(childAfterWrite, decodeEach(cache, new long[] {c}, qc, spec),
                    "the parent's later writes do not reach the child");
            ab = new long[] {a2, b};
            long d = cache.fork(c);
            mirror.fork(c, d);
            float[][] childBefore = decodeEach(cache, new long[] {c}, new NDArray[] {queries[0]}, spec);
            step(m, rnd, cache, mirror, new long[] {d}, new int[] {9}, spec); // the grandchild writes
            assertArrayEquals(childBefore, decodeEach(cache, new long[] {c}, new NDArray[] {queries[0]}, spec),
                    "the parent is unchanged when its fork writes");
            cache.free(c);
            assertArrayEquals(before, decodeEach(cache, ab, queries, spec), "after free");
            long e = cache.addSequence();
            mirror.add(e);
            step(m, rnd, cache, mirror, new long[] {e}, new int[] {40}, spec); // reuses freed pages
            assertArrayEquals(before, decodeEach(cache, ab, queries, spec), "after reusing freed pages");
            cache.free(d);
            cache.free(e);
            assertArrayEquals(before, decodeEach(cache, ab, queries, spec), "after freeing the rest");
            assertTrue(cache.getFreePageCount() > 0);
        }
    }

    @Test
    void halfPrecisionPoolsWork() {
        Random rnd = new Random(Seeds.next());
        try (NDManager m = manager.newSubManager();
                PagedKvCache cache = PagedKvCache.builder().setNumPages(8).setPageSize(16).setKvHeads(HKV)
                        .setHeadDim(D).optDataType(DataType.FLOAT16).optPoisonFreedPages(true).build()) {
            long a = cache.addSequence();
            float[] k = Reference.randn(rnd, 19 * HKV * D);
            float[] v = Reference.randn(rnd, 19 * HKV * D);
            NDArray kh = m.create(k, new Shape(19, HKV, D)).toType(DataType.FLOAT16, false);
            NDArray vh = m.create(v, new Shape(19, HKV, D)).toType(DataType.FLOAT16, false);
            cache.append(a, kh, vh);
            NDArray q = m.randomNormal(new Shape(1, HQ, D)).toType(DataType.FLOAT16, false);
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
            AttentionOutput o = PagedAttention.decode(q, cache.getKeyPages(0), cache.getValuePages(0),
                    cache.pageTable(a), spec);
            AttentionOutput dense = Attention.forward(q.expandDims(0), kh.expandDims(0), vh.expandDims(0),
                    spec.toBuilder().optLayout(QkvLayout.BSHD).build(), "math");
            double err = Reference.maxAbsDiff(Reference.toDoubles(o.getOutput()),
                    Reference.toDoubles(dense.getOutput().squeeze(0)));
            assertTrue(err <= 1e-3, "fp16 paged vs contiguous " + err);
        }
    }
}
