package org.flashdjl.ops.attention;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Every rejected input throws before any backend runs, naming the argument and the allowed values. */
class BadInputTest {

    private static NDManager m;
    private static final AttentionSpec PLAIN = AttentionSpec.builder().build();

    @BeforeAll
    static void setUp() {
        m = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        m.close();
    }

    private static NDArray t(long... shape) {
        return m.randomNormal(new Shape(shape));
    }

    private static void rejects(Executable call, String... fragments) {
        Exception e = assertThrows(IllegalArgumentException.class, call);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' lacks '" + f + "'");
        }
    }

    @Test
    void rankAndShapeMismatch() {
        rejects(() -> Attention.forward(t(2, 4, 8), t(2, 4, 8, 16), t(2, 4, 8, 16), PLAIN), "query", "rank 4",
                "[batch, heads, seq, dim]");
        rejects(() -> Attention.forward(t(2, 4, 8, 16), t(3, 4, 8, 16), t(3, 4, 8, 16), PLAIN), "batch sizes");
        rejects(() -> Attention.forward(t(2, 4, 8, 16), t(2, 4, 8, 32), t(2, 4, 8, 32), PLAIN), "key head dim 32",
                "query head dim 16");
        rejects(() -> Attention.forward(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 9, 16), PLAIN), "value shape");
    }

    @Test
    void headRatio() {
        rejects(() -> Attention.forward(t(1, 6, 8, 16), t(1, 4, 8, 16), t(1, 4, 8, 16), PLAIN),
                "query heads (6)", "key/value heads (4)", "divisors of 6");
    }

    @Test
    void dtypes() {
        NDArray half = t(1, 2, 4, 8).toType(DataType.FLOAT16, false);
        rejects(() -> Attention.forward(t(1, 2, 4, 8), half, half, PLAIN), "dtype", "must match");
        NDArray ints = m.zeros(new Shape(1, 2, 4, 8), DataType.INT32);
        rejects(() -> Attention.forward(ints, ints, ints, PLAIN), "query has dtype int32", "float16", "float32");
    }

    /**
     * A stand-in NDArray that reports a dtype and device but fails on any other call: bf16 tensors abort DJL's
     * JNI and this machine has no GPU, so the checks must decide from metadata alone, before DJL is called.
     */
    private static NDArray fake(NDArray real, DataType type, ai.djl.Device device) {
        return (NDArray) java.lang.reflect.Proxy.newProxyInstance(NDArray.class.getClassLoader(),
                new Class<?>[] {NDArray.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "getDataType":
                            return type;
                        case "getDevice":
                            return device;
                        case "getShape":
                            return real.getShape();
                        case "toString":
                            return "fake " + type + " on " + device;
                        default:
                            throw new AssertionError("DJL was called through " + method.getName());
                    }
                });
    }

    @Test
    void bf16IsRefusedBeforeDjlSeesIt() {
        NDArray q = t(1, 2, 4, 8);
        for (DataType type : new DataType[] {DataType.BFLOAT16, DataType.UNKNOWN}) {
            NDArray bf16 = fake(q, type, q.getDevice());
            rejects(() -> Attention.forward(bf16, bf16, bf16, PLAIN), "bfloat16 NDArrays crash DJL",
                    "allowed dtypes: float16, float32, float64");
        }
    }

    @Test
    void inputsOnDifferentDevices() {
        NDArray q = t(1, 2, 4, 8);
        NDArray onGpu = fake(q, DataType.FLOAT32, ai.djl.Device.gpu(1));
        rejects(() -> Attention.forward(q, onGpu, onGpu, PLAIN), "query is on cpu()", "key is on gpu(1)",
                "one device");
    }

    @Test
    void windowSinksScaleSoftcapAlibi() {
        rejects(() -> AttentionSpec.builder().optWindowBounds(-2, 0), "windowLeft must be >= -1", "-1 = unbounded");
        rejects(() -> AttentionSpec.builder().optWindowBounds(0, -5), "windowRight must be >= -1");
        rejects(() -> AttentionSpec.builder().optSinkTokens(-1), "sinkTokens must be >= 0");
        rejects(() -> AttentionSpec.builder().optScale(0f), "scale must be finite and > 0");
        rejects(() -> AttentionSpec.builder().optSoftcap(-1f), "softcap must be 0 (off)");
        rejects(() -> AttentionSpec.builder().optAlibiSlopes(new float[] {Float.NaN}), "alibiSlopes must be finite");
        AttentionSpec alibi = AttentionSpec.builder().optAlibiSlopes(new float[] {1, 2, 3}).build();
        rejects(() -> Attention.forward(t(1, 4, 8, 16), t(1, 4, 8, 16), t(1, 4, 8, 16), alibi), "3 slopes",
                "one per query head (4)");
    }

    @Test
    void cuSeqlens() {
        NDArray q = t(10, 2, 8);
        NDArray k = t(12, 2, 8);
        rejects(() -> Attention.forwardVarlen(q, k, k, m.create(new int[] {0, 6, 4, 10}),
                m.create(new int[] {0, 4, 8, 12}), PLAIN, "math"), "cuSeqlensQ must be non-decreasing");
        rejects(() -> Attention.forwardVarlen(q, k, k, m.create(new int[] {0, 4, 11}),
                m.create(new int[] {0, 4, 12}), PLAIN, "math"), "cuSeqlensQ must end at", "(10)");
        rejects(() -> Attention.forwardVarlen(q, k, k, m.create(new int[] {1, 4, 10}),
                m.create(new int[] {0, 4, 12}), PLAIN, "math"), "must start at 0");
        rejects(() -> Attention.forwardVarlen(q, k, k, m.create(new int[] {0, 4, 10}),
                m.create(new int[] {0, 12}), PLAIN, "math"), "cuSeqlensK has 2 entries");
        rejects(() -> Attention.forwardVarlen(q, k, k, m.create(new long[] {0, 4, 10}),
                m.create(new int[] {0, 4, 12}), PLAIN, "math"), "cuSeqlensQ must be int32");
        rejects(() -> Attention.forwardVarlen(t(1, 10, 2, 8), k, k, m.create(new int[] {0, 10}),
                m.create(new int[] {0, 12}), PLAIN, "math"), "query must have rank 3");
    }

    @Test
    void unknownBackendAndLayout() {
        rejects(() -> Attention.forward(t(1, 2, 4, 8), t(1, 2, 4, 8), t(1, 2, 4, 8), PLAIN, "fast"),
                "unknown attention backend 'fast'", "math", "online", "auto");
        rejects(() -> QkvLayout.of("sbhd"), "allowed: bhsd, bshd");
    }

    @Test
    void positionsOnlyForDenseBlocks() {
        rejects(() -> AttentionProblem.builder(t(1, 2, 4, 8), t(1, 2, 4, 8), t(1, 2, 4, 8), PLAIN)
                .optPositions(0, -3), "keyStart must be >= 0");
    }
}
