package org.flashdjl.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.transformer.PointwiseFeedForwardBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.Collections;
import java.util.function.Function;

/**
 * DJL's {@code TransformerEncoderBlock} with its attention replaced by {@link FlashScaledDotProductAttentionBlock}
 * (DJL's block keeps its attention in a private field, so it cannot be swapped in place). Same constructor
 * arguments, the same child names ({@code selfAttention}, {@code attentionNorm}, {@code outputBlock},
 * {@code outputNorm}) and the same data flow, so parameters saved from DJL's encoder load here.
 */
public final class FlashTransformerEncoderBlock extends AbstractBlock {

    private final FlashScaledDotProductAttentionBlock selfAttentionBlock;
    private final Dropout selfAttentionDropout;
    private final BatchNorm attentionNorm;
    private final PointwiseFeedForwardBlock pointWisefullyConnected;
    private final Dropout fullyConnectedDropout;
    private final BatchNorm outputNorm;

    /**
     * Creates an encoder block with the {@code auto} attention backend.
     *
     * @param embeddingSize the embedding size E
     * @param headCount the number of heads
     * @param hiddenSize the hidden size of the feed-forward block
     * @param dropoutProbability dropout in training
     * @param activationFunction the feed-forward activation
     */
    public FlashTransformerEncoderBlock(int embeddingSize, int headCount, int hiddenSize, float dropoutProbability,
            Function<NDList, NDList> activationFunction) {
        this(embeddingSize, headCount, hiddenSize, dropoutProbability, activationFunction, "auto");
    }

    /**
     * Creates an encoder block.
     *
     * @param embeddingSize the embedding size E
     * @param headCount the number of heads
     * @param hiddenSize the hidden size of the feed-forward block
     * @param dropoutProbability dropout in training
     * @param activationFunction the feed-forward activation
     * @param backend the attention backend
     */
    public FlashTransformerEncoderBlock(int embeddingSize, int headCount, int hiddenSize, float dropoutProbability,
            Function<NDList, NDList> activationFunction, String backend) {
        this.selfAttentionBlock = addChildBlock("selfAttention", FlashScaledDotProductAttentionBlock.builder()
                .setEmbeddingSize(embeddingSize).setHeadCount(headCount)
                .optAttentionProbsDropoutProb(dropoutProbability).optBackend(backend).build());
        this.selfAttentionDropout = Dropout.builder().optRate(dropoutProbability).build();
        this.attentionNorm = addChildBlock("attentionNorm", BatchNorm.builder().optAxis(2).build());
        this.pointWisefullyConnected = addChildBlock("outputBlock", new PointwiseFeedForwardBlock(
                Collections.singletonList(hiddenSize), embeddingSize, activationFunction));
        this.fullyConnectedDropout = Dropout.builder().optRate(dropoutProbability).build();
        this.outputNorm = addChildBlock("outputNorm", BatchNorm.builder().optAxis(2).build());
    }

    /** @return the attention block */
    public FlashScaledDotProductAttentionBlock getSelfAttention() {
        return selfAttentionBlock;
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return inputShapes;
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        selfAttentionBlock.initialize(manager, dataType, inputShapes);
        attentionNorm.initialize(manager, dataType, inputShapes);
        pointWisefullyConnected.initialize(manager, dataType, inputShapes);
        outputNorm.initialize(manager, dataType, inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        NDArray embedding = inputs.head(); // [B, S, E]
        NDList attention = selfAttentionBlock.forward(ps, inputs, training);
        NDList attentionDropped = selfAttentionDropout.forward(ps, attention, training);
        NDArray withResidual = attentionDropped.singletonOrThrow().add(embedding);
        NDList normed = attentionNorm.forward(ps, new NDList(withResidual), training);
        NDList ffn = pointWisefullyConnected.forward(ps, normed, training);
        NDList ffnDropped = fullyConnectedDropout.forward(ps, ffn, training);
        // As DJL's encoder: the second residual adds the block input.
        NDList withResidual2 = new NDList(ffnDropped.singletonOrThrow().add(embedding));
        return outputNorm.forward(ps, withResidual2, training);
    }
}
