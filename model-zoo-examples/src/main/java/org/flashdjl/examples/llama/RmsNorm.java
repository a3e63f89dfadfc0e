package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.util.PairList;

/**
 * Root-mean-square layer norm: {@code weight * x / sqrt(mean(x^2, -1) + eps)}, computed in fp32 and cast back to
 * x's dtype. Parameter {@code weight} [hidden].
 */
public final class RmsNorm extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int size;
    private final float eps;
    private final Parameter weight; // [hidden]

    /**
     * Creates the norm.
     *
     * @param size the normalised (last) dim
     * @param eps epsilon
     */
    public RmsNorm(int size, double eps) {
        super(VERSION);
        this.size = size;
        this.eps = (float) eps;
        this.weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.GAMMA)
                .optInitializer(new ConstantInitializer(1f)).build());
    }

    /** @return the weight parameter [hidden] */
    public Parameter getWeight() {
        return weight;
    }

    /**
     * Normalises x.
     *
     * @param ps the parameter store
     * @param x [..., hidden]
     * @return [..., hidden], x's dtype
     */
    public NDArray forward(ParameterStore ps, NDArray x) {
        NDArray w = ps.getValue(weight, x.getDevice(), false); // [hidden]
        NDArray x32 = x.getDataType() == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false);
        NDArray rms = x32.square().mean(new int[] {-1}, true).add(eps).sqrt(); // [..., 1]
        NDArray normed = x32.div(rms);
        if (x.getDataType() != DataType.FLOAT32) {
            normed = normed.toType(x.getDataType(), false);
        }
        return normed.mul(w);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        return new NDList(forward(ps, inputs.singletonOrThrow()));
    }

    /** {@inheritDoc} */
    @Override
    protected void prepare(Shape[] inputShapes) {
        weight.setShape(new Shape(size));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
