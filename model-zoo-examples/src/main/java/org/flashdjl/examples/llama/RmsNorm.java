package org.flashdjl.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.util.PairList;

import org.flashdjl.ops.transformer.TransformerOps;

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
     * Normalises x ({@link TransformerOps#rmsNorm}: one kernel on CUDA).
     *
     * @param ps the parameter store
     * @param x [..., hidden]
     * @return [..., hidden], x's dtype
     */
    public NDArray forward(ParameterStore ps, NDArray x) {
        NDArray w = ps.getValue(weight, x.getDevice(), false); // [hidden]
        return TransformerOps.rmsNorm(x, w, eps, style());
    }

    /**
     * Adds {@code delta} to {@code residual} in place and normalises the sum ({@link TransformerOps#addRmsNorm}): a
     * residual connection fused with the norm after it.
     *
     * @param ps the parameter store
     * @param residual [..., hidden], becomes {@code residual + delta} (an array the caller owns and may change)
     * @param delta [..., hidden]
     * @return the normalised sum [..., hidden]
     */
    public NDArray addForward(ParameterStore ps, NDArray residual, NDArray delta) {
        NDArray w = ps.getValue(weight, residual.getDevice(), false); // [hidden]
        return TransformerOps.addRmsNorm(residual, delta, w, eps, style());
    }

    private TransformerOps.NormStyle style() {
        return unitOffset ? TransformerOps.NormStyle.GEMMA : TransformerOps.NormStyle.LLAMA;
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
