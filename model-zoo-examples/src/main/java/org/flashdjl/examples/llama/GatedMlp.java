package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The gated feed-forward block of the LLaMA family: {@code down_proj(act(gate_proj(x)) * up_proj(x))}, with SiLU
 * (SwiGLU: Llama, Mistral, Qwen2) or tanh-approximated GELU (GeGLU: Gemma 2), biases only with Llama's
 * {@code mlp_bias}. Children, by Hugging Face name: {@code gate_proj}, {@code up_proj}, {@code down_proj}.
 */
public final class GatedMlp extends AbstractBlock {

    private static final byte VERSION = 1;

    /** The gate activations, by transformers' {@code hidden_act} / {@code hidden_activation} names. */
    public enum Activation {
        /** {@code x * sigmoid(x)} ({@code silu}, {@code swish}). */
        SILU("silu", "swish"),
        /**
         * {@code 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))} ({@code gelu_pytorch_tanh}, {@code gelu_new}),
         * computed in fp32.
         */
        GELU_TANH("gelu_pytorch_tanh", "gelu_new");

        private final String[] hfNames;

        Activation(String... hfNames) {
            this.hfNames = hfNames;
        }

        /** @return transformers' name */
        public String getHfName() {
            return hfNames[0];
        }

        /**
         * Finds an activation by transformers' name.
         *
         * @param name e.g. {@code gelu_pytorch_tanh}
         * @return the activation, or null
         */
        public static Activation of(String name) {
            for (Activation a : values()) {
                if (Arrays.asList(a.hfNames).contains(name)) {
                    return a;
                }
            }
            return null;
        }

        /** @return the supported names, comma separated */
        public static String supported() {
            return Arrays.stream(values()).flatMap(a -> Arrays.stream(a.hfNames)).collect(Collectors.joining(", "));
        }

        /**
         * Applies the activation.
         *
         * @param x [..., intermediate]
         * @return act(x) [..., intermediate], x's dtype
         */
        public NDArray apply(NDArray x) {
            if (this == SILU) {
                return x.mul(ai.djl.nn.Activation.sigmoid(x));
            }
            NDArray x32 = x.getDataType() == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false);
            NDArray inner = x32.add(x32.mul(x32).mul(x32).mul(0.044715f)).mul((float) Math.sqrt(2 / Math.PI));
            NDArray y = x32.mul(inner.tanh().add(1f)).mul(0.5f);
            return x.getDataType() == DataType.FLOAT32 ? y : y.toType(x.getDataType(), false);
        }
    }

    private final int hiddenSize;
    private final int intermediateSize;
    private final Activation activation;
    private final Linear gateProj; // weight [intermediate, hidden]
    private final Linear upProj; // weight [intermediate, hidden]
    private final Linear downProj; // weight [hidden, intermediate]

    /**
     * Creates the block.
     *
     * @param hiddenSize the model width
     * @param intermediateSize the MLP width
     * @param activation the gate activation
     * @param bias whether the three projections have biases
     */
    public GatedMlp(int hiddenSize, int intermediateSize, Activation activation, boolean bias) {
        super(VERSION);
        this.hiddenSize = hiddenSize;
        this.intermediateSize = intermediateSize;
        this.activation = activation;
        this.gateProj = addChildBlock("gate_proj", Linear.builder().setUnits(intermediateSize).optBias(bias).build());
        this.upProj = addChildBlock("up_proj", Linear.builder().setUnits(intermediateSize).optBias(bias).build());
        this.downProj = addChildBlock("down_proj", Linear.builder().setUnits(hiddenSize).optBias(bias).build());
    }

    /** @return gate_proj */
    public Linear getGateProj() {
        return gateProj;
    }

    /** @return up_proj */
    public Linear getUpProj() {
        return upProj;
    }

    /** @return down_proj */
    public Linear getDownProj() {
        return downProj;
    }

    /** @return the gate activation */
    public Activation getActivation() {
        return activation;
    }

    /**
     * Applies the MLP.
     *
     * @param ps the parameter store
     * @param x [..., hidden]
     * @return [..., hidden]
     */
    public NDArray forward(ParameterStore ps, NDArray x) {
        NDArray gate = gateProj.forward(ps, new NDList(x), false).head(); // [..., intermediate]
        NDArray up = upProj.forward(ps, new NDList(x), false).head(); // [..., intermediate]
        NDArray act = activation.apply(gate).mul(up); // act(gate) * up
        return downProj.forward(ps, new NDList(act), false).head(); // [..., hidden]
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        return new NDList(forward(ps, inputs.singletonOrThrow()));
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        gateProj.initialize(manager, dataType, new Shape(1, hiddenSize));
        upProj.initialize(manager, dataType, new Shape(1, hiddenSize));
        downProj.initialize(manager, dataType, new Shape(1, intermediateSize));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
