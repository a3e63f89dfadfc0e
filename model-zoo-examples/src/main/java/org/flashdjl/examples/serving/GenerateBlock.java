package org.flashdjl.examples.serving;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

/**
 * A DJL {@code Block} whose forward pass is a whole generation, so a {@code Predictor} runs the standard
 * translator flow: {@code processInput} (JSON to prompt ids), {@code forward} (generation here), {@code
 * processOutput} (ids to JSON). Input {@code NDList(promptIds int64 [T], sampling float64 [5] = (maxNewTokens,
 * temperature, topK, topP, seed))}; output {@code NDList(generated int64 [n], finishReason int32 [1] (0 length,
 * 1 eos))}. An empty prompt array is passed through untouched (a request the translator already rejected).
 * The wrapped {@link LlamaModel} is the child {@code model}, so its parameters are this block's.
 */
public final class GenerateBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final LlamaModel model;
    private final TextTokenizer tokenizer;

    /**
     * Wraps a model.
     *
     * @param model the model (weights set)
     * @param tokenizer its tokenizer (EOS ids and streaming decode)
     */
    public GenerateBlock(LlamaModel model, TextTokenizer tokenizer) {
        super(VERSION);
        this.model = addChildBlock("model", model);
        this.tokenizer = tokenizer;
    }

    /** @return the model */
    public LlamaModel getModel() {
        return model;
    }

    /** @return the tokenizer */
    public TextTokenizer getTokenizer() {
        return tokenizer;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(ParameterStore ps, NDList inputs, boolean training,
            PairList<String, Object> params) {
        NDArray prompt = inputs.get(0); // [T] int64
        if (prompt.getShape().size() == 0) {
            return inputs;
        }
        double[] s = inputs.get(1).toType(DataType.FLOAT64, false).toDoubleArray(); // [5]
        GenerationConfig.Builder b = GenerationConfig.builder().optMaxNewTokens((int) s[0])
                .optTemperature((float) s[1]).optTopK((int) s[2]).optTopP((float) s[3]).optSeed((long) s[4]);
        long[] ids = prompt.toLongArray();
        int[] promptIds = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            promptIds[i] = (int) ids[i];
        }
        Generator gen = new Generator(model, tokenizer, prompt.getManager());
        GenerationResult r = gen.generate(promptIds, b.build(), null);
        int[] out = r.getTokenIds();
        long[] outLong = new long[out.length];
        for (int i = 0; i < out.length; i++) {
            outLong[i] = out[i];
        }
        NDArray generated = prompt.getManager().create(outLong); // [n]
        NDArray reason = prompt.getManager().create(new int[] {
            r.getFinishReason() == GenerationResult.FinishReason.EOS ? 1 : 0}); // [1]
        return new NDList(generated, reason);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {new Shape(-1), new Shape(1)};
    }
}
