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
 * Root-mean-square layer norm, as transformers computes it: {@code n = x / sqrt(mean(x^2, -1) + eps)} in fp32, then
 * Llama's {@code weight * n.to(x.dtype)}, or Gemma's {@code (n * (1 + weight)).to(x.dtype)} (all in fp32; the
 * checkpoint stores {@code weight} centred on 0). Parameter {@code weight} [hidden].
 */
public final class RmsNorm extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int size;
    private final float eps;
    private final boolean unitOffset;
    private final Parameter weight; // [hidden]

    /**
     * Creates a Llama-style norm ({@code weight * n}).
     *
     * @param size the normalised (last) dim
     * @param eps epsilon
     */
    public RmsNorm(int size, double eps) {
        this(size, eps, false);
    }

    /**
     * Creates the norm.
     *
     * @param size the normalised (last) dim
     * @param eps epsilon
     * @param unitOffset true for Gemma's {@code (1 + weight)} in fp32, false for Llama's {@code weight}
     */
    public RmsNorm(int size, double eps, boolean unitOffset) {
        super(VERSION);
        this.size = size;
        this.eps = (float) eps;
        this.unitOffset = unitOffset;
        this.weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.GAMMA)
                .optInitializer(new ConstantInitializer(unitOffset ? 0f : 1f)).build());
    }

    /** @return the weight parameter [hidden] */
    public Parameter getWeight() {
        return weight;
    }

    /** @return whether the scale is Gemma's {@code (1 + weight)} */
    public boolean isUnitOffset() {
        return unitOffset;
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
        NDArray normed = x32.div(rms); // [..., hidden] fp32
        if (unitOffset) {
            NDArray w32 = w.getDataType() == DataType.FLOAT32 ? w : w.toType(DataType.FLOAT32, false);
            NDArray y = normed.mul(w32.add(1f)); // (1 + w) in fp32, as Gemma
            return x.getDataType() == DataType.FLOAT32 ? y : y.toType(x.getDataType(), false);
        }
        if (x.getDataType() != DataType.FLOAT32) {
            normed = normed.toType(x.getDataType(), false);
        }
        return normed.mul(w); // Llama: cast first, then the weight in x's dtype
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
