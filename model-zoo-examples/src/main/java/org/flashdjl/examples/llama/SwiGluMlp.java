package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The LLaMA feed-forward block: {@code down_proj(silu(gate_proj(x)) * up_proj(x))}, no biases.
 */
public final class SwiGluMlp extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int hiddenSize;
    private final int intermediateSize;
    private final Linear gateProj; // weight [intermediate, hidden]
    private final Linear upProj; // weight [intermediate, hidden]
    private final Linear downProj; // weight [hidden, intermediate]

    /**
     * Creates the block.
     *
     * @param hiddenSize the model width
     * @param intermediateSize the MLP width
     */
    public SwiGluMlp(int hiddenSize, int intermediateSize) {
        super(VERSION);
        this.hiddenSize = hiddenSize;
        this.intermediateSize = intermediateSize;
        this.gateProj = addChildBlock("gate_proj", Linear.builder().setUnits(intermediateSize).optBias(false).build());
        this.upProj = addChildBlock("up_proj", Linear.builder().setUnits(intermediateSize).optBias(false).build());
        this.downProj = addChildBlock("down_proj", Linear.builder().setUnits(hiddenSize).optBias(false).build());
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
        NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up); // silu(gate) * up
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
