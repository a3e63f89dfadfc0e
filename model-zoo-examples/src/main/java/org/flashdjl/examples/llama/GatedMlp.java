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

import org.flashdjl.ops.transformer.TransformerOps;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The gated feed-forward block of the LLaMA family: {@code down_proj(act(gate_proj(x)) * up_proj(x))}, with SiLU
 * (SwiGLU: Llama, Mistral, Qwen2) or tanh-approximated GELU (GeGLU: Gemma 2), biases only with Llama's
 * {@code mlp_bias}.
 *
 * <p>The gate and up projections are one packed projection {@code gate_up_proj} (weight [2 intermediate, hidden]:
 * Hugging Face's {@code gate_proj} rows, then {@code up_proj}'s), so the block is three launches: the packed
 * product, the fused activation ({@link TransformerOps#gatedActivation}) and {@code down_proj}.
 */
public final class GatedMlp extends AbstractBlock {

    private static final byte VERSION = 2;

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

        /** @return the fused operator's activation */
        public TransformerOps.GatedActivation toOp() {
            return this == SILU ? TransformerOps.GatedActivation.SILU : TransformerOps.GatedActivation.GELU_TANH;
        }
    }

    private final int hiddenSize;
    private final int intermediateSize;
    private final Activation activation;
    private final Linear gateUpProj; // weight [2 intermediate, hidden]: gate rows, then up rows
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
        this.gateUpProj = addChildBlock("gate_up_proj", Linear.builder().setUnits(2L * intermediateSize).optBias(bias)
                .build());
        this.downProj = addChildBlock("down_proj", Linear.builder().setUnits(hiddenSize).optBias(bias).build());
    }

    /** @return the packed gate and up projection (weight [2 intermediate, hidden], gate rows first) */
    public Linear getGateUpProj() {
        return gateUpProj;
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
        NDArray gateUp = gateUpProj.forward(ps, new NDList(x), false).head(); // [..., 2 intermediate]
        NDArray act = TransformerOps.gatedActivation(gateUp, activation.toOp()); // [..., intermediate]
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
        gateUpProj.initialize(manager, dataType, new Shape(1, hiddenSize));
        downProj.initialize(manager, dataType, new Shape(1, intermediateSize));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
