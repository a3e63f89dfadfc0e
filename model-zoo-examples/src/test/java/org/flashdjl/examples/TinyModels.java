package org.flashdjl.examples;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.safetensors.SafeDType;

import java.io.IOException;
import java.nio.file.Path;

/** Tiny checkpoints for tests: hidden 64, 2 layers, 4 heads over 2 KV heads, vocab 256 (or the byte vocab). */
public final class TinyModels {

    private TinyModels() {}

    /**
     * Returns the tiny config.
     *
     * @param vocab the vocabulary size
     * @param tied whether embeddings are tied
     * @param scaling the RoPE scaling
     * @return the config
     */
    public static LlamaConfig config(int vocab, boolean tied, RopeScaling scaling) {
        return LlamaConfig.builder().setSizes(64, 96, 2, 4, 2, vocab).optRope(10000, scaling).optRmsNormEps(1e-5)
                .optTieWordEmbeddings(tied).optSpecialTokens(vocab == 259 ? 256 : 1, vocab == 259 ? 257 : 2)
                .build();
    }

    /**
     * Writes a tiny checkpoint.
     *
     * @param dir where
     * @param config the config
     * @param dtype the stored dtype
     * @param seed the seed
     * @return the directory
     * @throws IOException on write errors
     */
    public static Path write(Path dir, LlamaConfig config, SafeDType dtype, long seed) throws IOException {
        DemoCheckpoint.write(dir, config, seed, dtype);
        return dir;
    }
}
