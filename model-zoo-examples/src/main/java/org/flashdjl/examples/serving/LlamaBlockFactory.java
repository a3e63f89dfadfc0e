package org.flashdjl.examples.serving;

import ai.djl.Model;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.nn.BlockFactory;

import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Builds the served {@link GenerateBlock} from the model directory: {@code config.json} and
 * {@code *.safetensors} through {@link LlamaLoader} into the DJL model's manager, plus the tokenizer. Named in
 * {@code serving.properties} as {@code blockFactory=org.flashdjl.examples.serving.LlamaBlockFactory}; DJL's
 * {@code BaseModelLoader} calls it before {@code Model.load}, and {@code option.hasParameter=false} tells the
 * engine not to look for a DJL {@code .params} file.
 *
 * <p>Arguments (non-{@code option.} keys of {@code serving.properties}): {@code attention_backend} (default
 * {@code auto}), {@code sliding_window} and {@code sink_tokens} (default off).
 */
public final class LlamaBlockFactory implements BlockFactory {

    private static final long serialVersionUID = 1L;

    /** {@inheritDoc} */
    @Override
    public Block newBlock(Model model, Path modelPath, Map<String, ?> arguments) throws IOException {
        AttentionOptions options = AttentionOptions.builder()
                .optBackend(LlamaTranslatorFactory.stringArg(arguments, "attention_backend", "auto"))
                .optSlidingWindow(LlamaTranslatorFactory.intArg(arguments, "sliding_window", 0))
                .optSinkTokens(LlamaTranslatorFactory.intArg(arguments, "sink_tokens", 0)).build();
        LlamaModel llama = LlamaLoader.load(modelPath, model.getNDManager(), options, DataType.FLOAT32);
        TextTokenizer tokenizer = LoadedModel.tokenizerFor(modelPath, llama.getConfig());
        return new GenerateBlock(llama, tokenizer);
    }
}
