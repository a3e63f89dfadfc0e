package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;

/** Parameters saved from DJL's attention and encoder blocks load into the drop-ins, with the same outputs. */
class SdpaDropInTest {

    private static final int E = 32;
    private static final int N = 4;

    private static byte[] save(Block block) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream os = new DataOutputStream(bytes)) {
            block.saveParameters(os);
        }
        return bytes.toByteArray();
    }

    private static void load(Block block, NDManager manager, byte[] bytes) throws Exception {
        try (DataInputStream is = new DataInputStream(new ByteArrayInputStream(bytes))) {
            block.loadParameters(manager, is);
        }
    }

    private static void assertClose(NDArray expected, NDArray actual, double tol) {
        assertEquals(expected.getShape(), actual.getShape());
        double err = expected.sub(actual).abs().max().getFloat();
        assertTrue(err <= tol, "max |diff| " + err + " > " + tol);
    }

    @Test
    void djlParametersLoadIntoTheDropInWithSameOutputs() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed(7);
            Shape in = new Shape(2, 9, E);
            ScaledDotProductAttentionBlock djl = ScaledDotProductAttentionBlock.builder().setEmbeddingSize(E)
                    .setHeadCount(N).build();
            djl.initialize(m, DataType.FLOAT32, in);
            byte[] saved = save(djl);

            for (String backend : new String[] {"math", "online", "auto"}) {
                FlashScaledDotProductAttentionBlock ours = FlashScaledDotProductAttentionBlock.builder()
                        .setEmbeddingSize(E).setHeadCount(N).optBackend(backend).build();
                load(ours, m, saved);
                assertArrayEquals(save(djl), save(ours), "serialization differs after a load");
                ParameterStore ps = new ParameterStore(m, false);
                NDArray x = m.randomNormal(in);
                // self attention, unmasked (the backend path)
                assertClose(djl.forward(ps, new NDList(x), false).head(),
                        ours.forward(ps, new NDList(x), false).head(), 1e-5);
                // self attention with a mask (DJL's exact formulation)
                NDArray mask = m.randomUniform(0, 1, new Shape(2, 9, 9)).gt(0.3).toType(DataType.FLOAT32, false);
                assertClose(djl.forward(ps, new NDList(x, mask), false).head(),
                        ours.forward(ps, new NDList(x, mask), false).head(), 1e-5);
                // keys, queries, values with T != F
                NDArray k = m.randomNormal(new Shape(2, 11, E));
                NDArray q = m.randomNormal(new Shape(2, 5, E));
                NDArray v = m.randomNormal(new Shape(2, 11, E));
                assertClose(djl.forward(ps, new NDList(k, q, v), false).head(),
                        ours.forward(ps, new NDList(k, q, v), false).head(), 1e-5);
            }
        }
    }

    @Test
    void dropInParametersLoadIntoDjl() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            Shape in = new Shape(1, 6, E);
            FlashScaledDotProductAttentionBlock ours = FlashScaledDotProductAttentionBlock.builder()
                    .setEmbeddingSize(E).setHeadCount(N).build();
            ours.initialize(m, DataType.FLOAT32, in);
            ScaledDotProductAttentionBlock djl = ScaledDotProductAttentionBlock.builder().setEmbeddingSize(E)
                    .setHeadCount(N).build();
            load(djl, m, save(ours));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(in);
            assertClose(djl.forward(ps, new NDList(x), false).head(), ours.forward(ps, new NDList(x), false).head(),
                    1e-5);
        }
    }

    @Test
    void encoderLoadsDjlEncoderParameters() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            Shape in = new Shape(2, 7, E);
            TransformerEncoderBlock djl = new TransformerEncoderBlock(E, N, 64, 0.1f, Activation::gelu);
            djl.initialize(m, DataType.FLOAT32, in);
            FlashTransformerEncoderBlock ours = new FlashTransformerEncoderBlock(E, N, 64, 0.1f, Activation::gelu,
                    "online");
            load(ours, m, save(djl));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(in);
            assertClose(djl.forward(ps, new NDList(x), false).head(), ours.forward(ps, new NDList(x), false).head(),
                    1e-4);
        }
    }

    @Test
    void causalOptionMatchesAnExplicitCausalMask() {
        try (NDManager m = NDManager.newBaseManager()) {
            Shape in = new Shape(1, 8, E);
            FlashScaledDotProductAttentionBlock causal = FlashScaledDotProductAttentionBlock.builder()
                    .setEmbeddingSize(E).setHeadCount(N).optCausal(true).optBackend("online").build();
            causal.initialize(m, DataType.FLOAT32, in);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(in);
            NDArray rows = m.arange(8).reshape(8, 1);
            NDArray cols = m.arange(8).reshape(1, 8);
            NDArray mask = cols.lte(rows).toType(DataType.FLOAT32, false).reshape(1, 8, 8);
            // DJL-style mask path of the same block (keep = lower triangle) vs the backend's causal mask.
            FlashScaledDotProductAttentionBlock plain = FlashScaledDotProductAttentionBlock.builder()
                    .setEmbeddingSize(E).setHeadCount(N).build();
            plain.initialize(m, DataType.FLOAT32, in);
            for (int i = 0; i < 4; i++) {
                Block src = causal.getChildren().get(i).getValue();
                Block dst = plain.getChildren().get(i).getValue();
                dst.getParameters().get("weight").getArray().set(src.getParameters().get("weight").getArray()
                        .toFloatArray());
                dst.getParameters().get("bias").getArray().set(src.getParameters().get("bias").getArray()
                        .toFloatArray());
            }
            assertClose(plain.forward(ps, new NDList(x, mask), false).head(),
                    causal.forward(ps, new NDList(x), false).head(), 1e-5);
        }
    }
}
