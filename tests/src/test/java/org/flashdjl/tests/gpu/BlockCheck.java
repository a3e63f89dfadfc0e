package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.nn.NativeAttentionBlock;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.testing.Reference;

import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Runs a DJL {@link Block} with the same weights on the CPU in fp32 (the truth), on the CPU in fp16 (the budget)
 * and on a candidate manager (the GPU in the GPU suite) and compares the outputs: {@code max|candidate - cpu fp32|}
 * must stay within {@code max(2 x max|cpu fp16 - cpu fp32|, floor x max(1, max|cpu fp32|))}, the flash-attention
 * budget rule applied to a whole block, with a floor for blocks whose fp16 CPU run happens to be exact. Weights
 * are drawn from a seed into a CPU fp32 block and copied, converted, into fresh blocks of the same structure
 * ({@link Parameter#setArray}, as {@code LlamaLoader} sets checkpoint weights); inputs are drawn from a seed and
 * rounded to fp16, so every run sees the same values.
 */
final class BlockCheck {

    /** The floor of fp16 budgets, relative to {@code max(1, max|cpu fp32|)}: about two fp16 ulps. */
    static final double FP16_FLOOR = 1e-3;

    /** The budget of fp32 candidates, relative to {@code max(1, max|cpu fp32|)}: fp32 accumulation order. */
    static final double FP32_FLOOR = 1e-4;

    private BlockCheck() {}

    /**
     * Runs a block on a manager's device in a dtype and returns its outputs.
     *
     * @param <B> the block type
     */
    @FunctionalInterface
    interface Runner<B extends Block> {
        /**
         * Runs the block.
         *
         * @param block the block, its parameters on {@code m}'s device in {@code type}
         * @param m the manager (create inputs there)
         * @param type the activation dtype
         * @param inputSeed the seed of the inputs (the same values for every run)
         * @return every output value, flattened, in a fixed order
         */
        float[] run(B block, NDManager m, DataType type, long inputSeed);
    }

    /**
     * One block under test.
     *
     * @param <B> the block type
     * @param name what it is, for messages
     * @param factory makes a fresh, uninitialised block
     * @param inputShape the input shape that {@code initialize} needs
     * @param runner runs it
     */
    record Case<B extends Block>(String name, Supplier<B> factory, Shape inputShape, Runner<B> runner) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** The outcome of a comparison, for reports. */
    record Result(double err, double budget, double cpu16Err, double maxRef) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "max|candidate - cpu fp32| %.3g, budget %.3g (cpu fp16 vs fp32 %.3g,"
                    + " max|cpu fp32| %.3g)", err, budget, cpu16Err, maxRef);
        }
    }

    /**
     * Compares a block on a candidate manager in a dtype with the same block on the CPU in fp32.
     *
     * @param <B> the block type
     * @param c the case
     * @param cpu a CPU manager
     * @param candidate where the candidate runs
     * @param candidateType its dtype (float16: the budget from the CPU fp16 run; float32: {@link #FP32_FLOOR})
     * @param seed the seed of weights and inputs
     * @return the figures
     */
    static <B extends Block> Result compare(Case<B> c, NDManager cpu, NDManager candidate, DataType candidateType,
            long seed) {
        Random rnd = new Random(seed);
        long inputSeed = rnd.nextLong();
        try (NDManager src = cpu.newSubManager(); NDManager c16 = cpu.newSubManager();
                NDManager cand = candidate.newSubManager()) {
            B source = c.factory().get();
            source.initialize(src, DataType.FLOAT32, c.inputShape());
            randomize(source, rnd);
            double[] ref = doubles(c.runner().run(source, src, DataType.FLOAT32, inputSeed));
            double maxRef = maxAbs(ref);
            double cpu16Err = 0;
            double budget;
            if (candidateType == DataType.FLOAT16) {
                double[] low = doubles(c.runner().run(copy(source, c.factory().get(), c16, DataType.FLOAT16), c16,
                        DataType.FLOAT16, inputSeed));
                cpu16Err = Reference.maxAbsDiff(low, ref);
                budget = Math.max(2 * cpu16Err, FP16_FLOOR * Math.max(1, maxRef));
            } else {
                budget = FP32_FLOOR * Math.max(1, maxRef);
            }
            double[] got = doubles(c.runner().run(copy(source, c.factory().get(), cand, candidateType), cand,
                    candidateType, inputSeed));
            double err = Reference.maxAbsDiff(got, ref);
            Result r = new Result(err, budget, cpu16Err, maxRef);
            System.out.println(c.name() + " on " + candidate.getDevice() + " " + candidateType + ": " + r);
            assertTrue(err <= budget, c.name() + " on " + candidate.getDevice() + " in " + candidateType + " vs the"
                    + " same weights on the CPU in fp32: " + r + "; seed " + seed);
            return r;
        }
    }

    /**
     * Sets every parameter of an initialised fp32 CPU block from a seed: weights {@code N(0, 1/fanIn)}, biases and
     * shifts {@code 0.02 N(0, 1)} / {@code 0.1 N(0, 1)}, norm scales {@code 1 + 0.1 N(0, 1)}, running variances in
     * [0.5, 1.5).
     *
     * @param block the block
     * @param rnd the random source
     */
    static void randomize(Block block, Random rnd) {
        for (Parameter p : block.getParameters().values()) {
            NDArray a = p.getArray();
            Shape s = a.getShape();
            float[] x = new float[(int) s.size()];
            String name = p.getName();
            for (int i = 0; i < x.length; i++) {
                double g = rnd.nextGaussian();
                if (name.endsWith("runningVar")) {
                    x[i] = (float) (0.5 + rnd.nextDouble());
                } else if (name.endsWith("gamma")) {
                    x[i] = (float) (1 + 0.1 * g);
                } else if (s.dimension() >= 2) {
                    x[i] = (float) (g / Math.sqrt(s.get(s.dimension() - 1)));
                } else if (name.endsWith("bias")) {
                    x[i] = (float) (0.02 * g);
                } else {
                    x[i] = (float) (0.1 * g);
                }
            }
            a.set(x);
        }
    }

    /**
     * Gives a fresh block of the same structure copies of every parameter of {@code src}, on {@code m}'s device in
     * {@code type}.
     *
     * @param <B> the block type
     * @param src an initialised block
     * @param dst a fresh, uninitialised block of the same structure
     * @param m the manager that owns the copies
     * @param type their dtype
     * @return {@code dst}
     */
    static <B extends Block> B copy(Block src, B dst, NDManager m, DataType type) {
        ParameterList from = src.getParameters();
        ParameterList to = dst.getParameters();
        assertEquals(from.keys(), to.keys(), "parameter names of the source and the fresh block");
        for (int i = 0; i < from.size(); i++) {
            NDArray a = from.valueAt(i).getArray();
            NDArray f32 = m.create(a.toFloatArray(), a.getShape());
            NDArray converted = type == DataType.FLOAT32 ? f32 : f32.toType(type, false);
            if (converted != f32) {
                f32.close();
            }
            to.valueAt(i).setArray(converted);
        }
        return dst;
    }

    /**
     * Compares a {@link NativeAttentionBlock} on a candidate manager in fp16 with the same block on the CPU in fp32,
     * with the flash-attention error budget of the float64 reference ({@link GpuCheck#expected}): q [2, 8, 33, 64]
     * (bhsd; bshd the same values transposed), k/v with 2 heads and 57 keys (GQA 4), causal, the block's
     * {@code auto} backend.
     *
     * @param candidate where the candidate runs
     * @param cpu a CPU manager (the fp32 run)
     * @param layout {@code "bhsd"} or {@code "bshd"}
     * @param seed the seed of the inputs
     * @return max |candidate - cpu fp32|
     */
    static double nativeAttention(NDManager candidate, NDManager cpu, String layout, long seed) {
        int b = 2;
        int hq = 8;
        int hkv = 2;
        int lq = 33;
        int lk = 57;
        int d = 64;
        Random rnd = new Random(seed);
        float[] q = HostFloats.roundInPlace(DeviceDataType.FP16, Reference.randn(rnd, b * hq * lq * d)); // bhsd
        float[] k = HostFloats.roundInPlace(DeviceDataType.FP16, Reference.randn(rnd, b * hkv * lk * d));
        float[] v = HostFloats.roundInPlace(DeviceDataType.FP16, Reference.randn(rnd, b * hkv * lk * d));
        Reference.Options ref = new Reference.Options();
        ref.causal = true;
        ref.scale = 1 / Math.sqrt(d);
        GpuCheck.Expected e = GpuCheck.expected(DeviceDataType.FP16, q, k, v, b, hq, hkv, lq, lk, d, ref);
        double budget = Math.max(Reference.budget(doubles(e.low), e.out), 1e-3);
        NativeAttentionBlock block = NativeAttentionBlock.builder().optQkvFormat(layout).optCausal(true).build();
        boolean bshd = layout.equals("bshd");
        double[] want = null;
        double err = 0;
        for (NDManager m : new NDManager[] {cpu, candidate}) {
            DataType type = m == cpu ? DataType.FLOAT32 : DataType.FLOAT16;
            try (NDManager s = m.newSubManager()) {
                NDList in = new NDList(layout(s, q, b, hq, lq, d, bshd, type), layout(s, k, b, hkv, lk, d, bshd, type),
                        layout(s, v, b, hkv, lk, d, bshd, type));
                NDArray out = block.forward(new ParameterStore(s, false), in, false).singletonOrThrow();
                assertEquals(bshd ? new Shape(b, lq, hq, d) : new Shape(b, hq, lq, d), out.getShape(), layout);
                assertEquals(type, out.getDataType(), "output dtype on " + m.getDevice());
                float[] o = NdArrayAttention.floats(out);
                double[] got = doubles(bshd ? GpuCheck.bshdToBhsd(o, b, hq, lq, d) : o);
                if (want == null) {
                    want = got;
                    assertTrue(Reference.maxAbsDiff(want, e.out) <= 1e-5, "NativeAttentionBlock " + layout
                            + " on the CPU in fp32 vs float64: " + Reference.maxAbsDiff(want, e.out) + "; seed "
                            + seed);
                } else {
                    err = Reference.maxAbsDiff(got, want);
                }
            }
        }
        System.out.printf(Locale.ROOT, "NativeAttentionBlock %s on %s fp16: max|candidate - cpu fp32| %.3g,"
                + " flash budget %.3g%n", layout, candidate.getDevice(), err, budget);
        assertTrue(err <= budget, "NativeAttentionBlock " + layout + " (causal, q [2, 8, 33, 64], kv 2 heads x 57"
                + " keys) on " + candidate.getDevice() + " in fp16 vs the CPU in fp32: max |diff| " + err
                + " > flash budget " + budget + "; seed " + seed);
        return err;
    }

    private static NDArray layout(NDManager s, float[] bhsd, int b, int h, int l, int d, boolean bshd,
            DataType type) {
        return bshd ? Reference.create(s, Reference.bhsdToBshd(bhsd, b, h, l, d), type, b, l, h, d)
                : Reference.create(s, bhsd, type, b, h, l, d);
    }

    /**
     * Draws fp16-representable inputs.
     *
     * @param seed the seed
     * @param n the count
     * @return the values
     */
    static float[] inputs(long seed, int n) {
        return HostFloats.roundInPlace(DeviceDataType.FP16, Reference.randn(new Random(seed), n));
    }

    static double[] doubles(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    static double maxAbs(double[] x) {
        double m = 0;
        for (double v : x) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /**
     * Concatenates output arrays.
     *
     * @param parts the parts
     * @return one array
     */
    static float[] concat(java.util.List<float[]> parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
