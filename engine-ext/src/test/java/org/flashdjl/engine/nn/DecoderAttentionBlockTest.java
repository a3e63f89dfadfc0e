package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.ContiguousKvCache;
import org.flashdjl.engine.cache.KvCache;
import org.flashdjl.engine.cache.KvSegment;
import org.flashdjl.engine.cache.KvView;
import org.flashdjl.engine.cache.StreamingKvCache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

/** Incremental decoding through each cache equals the full (masked) recomputation. */
class DecoderAttentionBlockTest {

    private static final int HIDDEN = 64;
    private static final int[] CHUNKS = {5, 1, 1, 3, 1, 2, 1, 1};

    /**
     * A sink + window test double: keeps only the sinks and the last {@code window - 1} keys before each chunk
     * (dropping the rest), and returns them as two segments, the shape of a {@code BlockKvCache} view.
     */
    static final class SinkWindowCache implements KvCache {
        private final int sinks;
        private final int window;
        private NDArray sinkK;
        private NDArray sinkV;
        private NDArray recentK;
        private NDArray recentV;
        private long recentStart;
        private long length;
        private final NDManager manager;

        SinkWindowCache(NDManager parent, int sinks, int window) {
            this.manager = parent.newSubManager();
            this.sinks = sinks;
            this.window = window;
        }

        @Override
        public long nextPosition() {
            return length;
        }

        @Override
        public KvView append(NDArray k, NDArray v) {
            long t = k.getShape().get(2);
            long start = length;
            NDArray allK = recentK == null ? k : NDArrays.concat(new NDList(recentK, k), 2);
            NDArray allV = recentV == null ? v : NDArrays.concat(new NDList(recentV, v), 2);
            long allStart = recentK == null ? start : recentStart;
            // move leading tokens into the sinks while there is room
            while (allStart < sinks && allK.getShape().get(2) > 0) {
                NDArray k0 = allK.get(new NDIndex(":, :, 0:1"));
                NDArray v0 = allV.get(new NDIndex(":, :, 0:1"));
                sinkK = sinkK == null ? k0 : NDArrays.concat(new NDList(sinkK, k0), 2);
                sinkV = sinkV == null ? v0 : NDArrays.concat(new NDList(sinkV, v0), 2);
                allK = allK.get(new NDIndex(":, :, 1:"));
                allV = allV.get(new NDIndex(":, :, 1:"));
                allStart++;
            }
            length = start + t;
            List<KvSegment> segs = new ArrayList<>();
            if (sinkK != null) {
                segs.add(new KvSegment(sinkK, sinkV, 0));
            }
            if (allK.getShape().get(2) > 0) {
                segs.add(new KvSegment(allK, allV, allStart));
            }
            // keep what the next chunk's first query can still see: the last window - 1 keys
            long keep = Math.min(allK.getShape().get(2), window - 1);
            long drop = allK.getShape().get(2) - keep;
            recentK = keepArray(allK.get(new NDIndex(":, :, {}:", drop)));
            recentV = keepArray(allV.get(new NDIndex(":, :, {}:", drop)));
            recentStart = allStart + drop;
            if (sinkK != null) {
                sinkK = keepArray(sinkK);
                sinkV = keepArray(sinkV);
            }
            return new KvView(segs, start);
        }

        private NDArray keepArray(NDArray a) {
            NDArray d = a.duplicate();
            NDScope.unregister(d);
            d.attach(manager);
            return d;
        }

        @Override
        public long memoryBytes() {
            return 0;
        }

        @Override
        public long cachedLength() {
            return (sinkK == null ? 0 : sinkK.getShape().get(2)) + (recentK == null ? 0 : recentK.getShape().get(2));
        }

        @Override
        public void close() {
            manager.close();
        }
    }

    private static DecoderAttentionBlock block(NDManager m, String backend, int window, int sinks) {
        DecoderAttentionBlock b = DecoderAttentionBlock.builder().setHiddenSize(HIDDEN).setNumHeads(4)
                .optNumKvHeads(2).optRopeTheta(500).optRopeScaling(RopeScaling.linear(2)).optSlidingWindow(window)
                .optSinkTokens(sinks).optBackend(backend).build();
        m.getEngine().setRandomSeed(11);
        b.initialize(m, DataType.FLOAT32, new Shape(1, 1, HIDDEN));
        return b;
    }

    private static NDArray incremental(DecoderAttentionBlock b, ParameterStore ps, NDArray x, KvCache cache) {
        NDList outs = new NDList();
        long pos = 0;
        for (int c : CHUNKS) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray out = b.forward(ps, x.get(new NDIndex(":, {}:{}, :", pos, pos + c)), cache);
                NDScope.unregister(out);
                outs.add(out);
            }
            pos += c;
        }
        return NDArrays.concat(outs, 1);
    }

    private static void assertClose(NDArray expected, NDArray actual) {
        assertEquals(expected.getShape(), actual.getShape());
        float err = expected.sub(actual).abs().max().getFloat();
        assertTrue(err < 2e-5, "max |diff| " + err);
    }

    @ParameterizedTest
    @ValueSource(strings = {"math", "online"})
    void contiguousCacheEqualsFullRecomputation(String backend) {
        try (NDManager m = NDManager.newBaseManager()) {
            DecoderAttentionBlock b = block(m, backend, -1, 0);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(2, 15, HIDDEN));
            NDArray full = b.forward(ps, x, null);
            try (KvCache cache = new ContiguousKvCache(m, -1)) {
                assertClose(full, incremental(b, ps, x, cache));
                assertEquals(15, cache.nextPosition());
                assertTrue(cache.memoryBytes() >= 2L * 2 * 2 * 15 * 16 * 4);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2})
    void slidingWindowWithSinksEqualsTheMaskedFullComputation(int sinks) {
        try (NDManager m = NDManager.newBaseManager()) {
            DecoderAttentionBlock b = block(m, "online", 4, sinks);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(1, 15, HIDDEN));
            NDArray full = b.forward(ps, x, null); // window + sinks as a mask over the whole sequence
            try (KvCache contiguous = new ContiguousKvCache(m, -1);
                    KvCache streaming = new SinkWindowCache(m, sinks, 4);
                    StreamingKvCache block = new StreamingKvCache(m, 1, 2, 16, DataType.FLOAT32, 4, sinks,
                            StreamingKvCache.Positions.ORIGINAL)) {
                assertClose(full, incremental(b, ps, x, contiguous));
                assertClose(full, incremental(b, ps, x, streaming));
                assertTrue(streaming.cachedLength() <= sinks + 3, "streaming cache grew: " + streaming.cachedLength());
                assertClose(full, incremental(b, ps, x, block));
                assertEquals(sinks + 4, block.cachedLength());
                assertEquals(2L * (sinks + 4) * 2 * 16 * 4, block.memoryBytes()); // K+V, B=1, Hkv=2, D=16, fp32
            }
            // the window matters: without it the result differs
            DecoderAttentionBlock unwindowed = block(m, "online", -1, 0);
            float diff = unwindowed.forward(ps, x, null).sub(full).abs().max().getFloat();
            assertTrue(diff > 1e-3, "window had no effect");
        }
    }

    @org.junit.jupiter.api.Test
    void inCachePositionsAttendTheCompressedSequenceAsStreamingLlm() {
        int sinks = 2;
        int window = 4;
        try (NDManager m = NDManager.newBaseManager();
                StreamingKvCache cache = new StreamingKvCache(m, 1, 2, 16, DataType.FLOAT32, window,
                        sinks, StreamingKvCache.Positions.IN_CACHE)) {
            DecoderAttentionBlock b = block(m, "online", window, sinks);
            ParameterStore ps = new ParameterStore(m, false);
            int n = 13;
            NDArray x = m.randomNormal(new Shape(1, n, HIDDEN));
            // a 3-token prompt while filling, then one token per step
            NDArray first = b.forward(ps, x.get(new NDIndex(":, 0:3, :")), cache);
            assertClose(b.forward(ps, x.get(new NDIndex(":, 0:3, :")), null), first);
            for (int p = 3; p < n; p++) {
                NDArray step = b.forward(ps, x.get(new NDIndex(":, {}:{}, :", p, p + 1)), cache);
                // StreamingLLM: the token attends to [sinks | last window tokens] re-indexed 0..L-1
                List<Long> kept = new ArrayList<>();
                for (long i = 0; i <= p; i++) {
                    if (i < sinks || i > p - window) {
                        kept.add(i);
                    }
                }
                NDList rows = new NDList();
                for (long i : kept) {
                    rows.add(x.get(new NDIndex(":, {}:{}, :", i, i + 1)));
                }
                NDArray compressed = NDArrays.concat(rows, 1);
                NDArray expected = b.forward(ps, compressed, null).get(new NDIndex(":, -1:, :"));
                assertClose(expected, step);
            }
            assertEquals(sinks + window, cache.cachedLength());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"bhsd", "bshd"})
    void nativeAttentionBlockMatchesTheOperator(String format) {
        try (NDManager m = NDManager.newBaseManager()) {
            boolean bhsd = format.equals("bhsd");
            Shape qs = bhsd ? new Shape(2, 8, 7, 16) : new Shape(2, 7, 8, 16);
            Shape ks = bhsd ? new Shape(2, 2, 9, 16) : new Shape(2, 9, 2, 16);
            NDArray q = m.randomNormal(qs);
            NDArray k = m.randomNormal(ks);
            NDArray v = m.randomNormal(ks);
            NativeAttentionBlock online = NativeAttentionBlock.builder().optQkvFormat(format).optBackend("online")
                    .optCausal(true).build();
            NativeAttentionBlock math = NativeAttentionBlock.builder().optQkvFormat(format).optBackend("math")
                    .optCausal(true).build();
            ParameterStore ps = new ParameterStore(m, false);
            NDArray a = online.forward(ps, new NDList(q, k, v), false).head();
            NDArray e = math.forward(ps, new NDList(q, k, v), false).head();
            assertEquals(qs, a.getShape());
            assertClose(e, a);
            assertEquals(qs, online.getOutputShapes(new Shape[] {qs, ks, ks})[0]);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ring", "ulysses"})
    void contextParallelBlockDelegatesToItsGroupInFp32(String method) {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray q = m.randomNormal(new Shape(1, 4, 5, 8)).toType(DataType.FLOAT16, false);
            NDArray k = m.randomNormal(new Shape(1, 2, 5, 8)).toType(DataType.FLOAT16, false);
            NDArray v = m.randomNormal(new Shape(1, 2, 5, 8)).toType(DataType.FLOAT16, false);
            ContextParallelAttentionBlock cp = ContextParallelAttentionBlock.builder().optMethod(method)
                    .optBackend("math").build();
            ParameterStore ps = new ParameterStore(m, false);
            NDArray single = cp.forward(ps, new NDList(q, k, v), false).head(); // no group: single rank
            assertEquals(DataType.FLOAT16, single.getDataType());
            String[] seen = new String[2];
            cp.setContextParallelism(new ContextParallelism() {
                @Override
                public int getRank() {
                    return 0;
                }

                @Override
                public int getWorldSize() {
                    return 2;
                }

                @Override
                public org.flashdjl.ops.attention.AttentionOutput attention(NDArray q2, NDArray k2, NDArray v2,
                        org.flashdjl.ops.attention.AttentionSpec spec, String backend, String how) {
                    seen[0] = how;
                    seen[1] = q2.getDataType().toString();
                    return org.flashdjl.ops.attention.Attention.forward(q2, k2, v2, spec, backend);
                }
            });
            NDArray viaGroup = cp.forward(ps, new NDList(q, k, v), false).head();
            assertEquals(method, seen[0]);
            assertEquals(DataType.FLOAT32.toString(), seen[1]);
            assertEquals(DataType.FLOAT16, viaGroup.getDataType());
            assertClose(single.toType(DataType.FLOAT32, false), viaGroup.toType(DataType.FLOAT32, false));
        }
    }

    @org.junit.jupiter.api.Test
    void badConfigurationsAreRefusedWithReasons() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DecoderAttentionBlock.builder().setHiddenSize(64).setNumHeads(4).optNumKvHeads(3).build());
        assertTrue(e.getMessage().contains("multiple of key/value heads"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DecoderAttentionBlock.builder().setHiddenSize(64).setNumHeads(4).optBackend("paged").build());
        assertTrue(e.getMessage().contains("unknown attention backend 'paged'; known: [math, online"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ContextParallelAttentionBlock.builder().optMethod("tree"));
        assertTrue(e.getMessage().contains("ring or ulysses"), e.getMessage());
    }
}
