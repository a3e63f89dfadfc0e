package org.flashdjl.examples.serving;

import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.LlamaLoader;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes a model directory that DJL Serving (and {@code Criteria}) loads:
 *
 * <pre>
 * serving.properties     engine=PyTorch, option.hasParameter=false, blockFactory=..., translatorFactory=..., limits
 * config.json            the checkpoint's
 * *.safetensors          the checkpoint's
 * tokenizer.json         when the checkpoint has one (else the byte tokenizer of the demo vocabulary)
 * </pre>
 *
 * DJL Serving also needs the FlashDJL jars on its class path: put them in the directory's {@code libs/}
 * (engine-ext, ops, kvcache, model-zoo-examples, plus ai.djl.huggingface:tokenizers), which DJL Serving adds to
 * the model's class loader.
 */
public final class ServingModelDir {

    private ServingModelDir() {}

    /**
     * Returns the {@code serving.properties} text.
     *
     * @param maxPromptTokens the prompt limit
     * @param maxNewTokens the max_new_tokens limit
     * @return the properties text
     */
    public static String servingProperties(int maxPromptTokens, int maxNewTokens) {
        return String.join("\n",
                "# FlashDJL LLaMA-family model for DJL Serving (loaded through Criteria as DJL Serving does).",
                "engine=PyTorch",
                "# weights come from *.safetensors through the block factory, not from a DJL .params file",
                "option.hasParameter=false",
                "blockFactory=" + LlamaBlockFactory.class.getName(),
                "translatorFactory=" + LlamaTranslatorFactory.class.getName(),
                "attention_backend=auto",
                "max_prompt_tokens=" + maxPromptTokens,
                "max_new_tokens=" + maxNewTokens,
                "");
    }

    /**
     * Writes the directory from a checkpoint.
     *
     * @param dest the model directory to create
     * @param checkpoint the source checkpoint (config.json, *.safetensors, optional tokenizer.json)
     * @param demo whether to (re)write the demo checkpoint into {@code checkpoint} first
     * @param maxPromptTokens the prompt limit
     * @param maxNewTokens the max_new_tokens limit
     * @return {@code dest}
     * @throws IOException if a file cannot be copied or written
     */
    public static Path write(Path dest, Path checkpoint, boolean demo, int maxPromptTokens, int maxNewTokens)
            throws IOException {
        if (demo) {
            DemoCheckpoint.ensure(checkpoint);
        }
        Files.createDirectories(dest);
        Files.copy(checkpoint.resolve("config.json"), dest.resolve("config.json"),
                StandardCopyOption.REPLACE_EXISTING);
        for (Path f : LlamaLoader.safetensorsFiles(checkpoint)) {
            Files.copy(f, dest.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        Path tok = checkpoint.resolve("tokenizer.json");
        if (Files.isRegularFile(tok)) {
            Files.copy(tok, dest.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.write(dest.resolve("serving.properties"),
                servingProperties(maxPromptTokens, maxNewTokens).getBytes(StandardCharsets.UTF_8));
        return dest;
    }
}
