package org.flashdjl.examples.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.safetensors.SafeDType;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;

/** tokenizer.json through DJL's HF tokenizers, offline (native library from the jar), and inside a model dir. */
class HfTokenizerTest {

    @TempDir
    Path tmp;

    private static Path tokenizerJson() throws Exception {
        return Paths.get(HfTokenizerTest.class.getResource("/tokenizer/tokenizer.json").toURI());
    }

    @Test
    void encodesAndDecodesOffline() throws Exception {
        try (HfTextTokenizer t = HfTextTokenizer.load(tokenizerJson(), 1, Arrays.asList(2))) {
            assertArrayEquals(new int[] {5, 6, 7, 8}, t.encode("The quick brown fox"));
            assertArrayEquals(new int[] {3, 0}, t.encode("hello zebra"));
            assertEquals("hello world", t.decode(new int[] {3, 4}));
            StreamingDecoder d = t.newStreamingDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : new int[] {5, 6, 8}) {
                sb.append(d.next(id));
            }
            sb.append(d.flush());
            assertEquals("the quick fox", sb.toString());
        }
    }

    @Test
    void aModelDirectoryWithTokenizerJsonUsesIt() throws Exception {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.config(256, false, RopeScaling.none()), SafeDType.F32,
                4);
        Files.copy(tokenizerJson(), dir.resolve("tokenizer.json"));
        try (LoadedModel lm = LoadedModel.load(dir, Device.cpu(), AttentionOptions.defaults())) {
            assertTrue(lm.getTokenizer() instanceof HfTextTokenizer);
            Generator g = new Generator(lm.getModel(), lm.getTokenizer(), lm.getManager());
            GenerationResult r = g.generate("hello world", GenerationConfig.builder().optMaxNewTokens(3)
                    .optStopAtEos(false).build(), null);
            assertArrayEquals(new int[] {1, 3, 4}, r.getPromptIds());
            assertEquals(3, r.getTokenIds().length);
        }
    }
}
