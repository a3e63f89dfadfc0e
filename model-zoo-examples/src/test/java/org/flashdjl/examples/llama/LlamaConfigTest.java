package org.flashdjl.examples.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.safetensors.CheckpointException;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code config.json} as transformers 4.x and 5.x write it, per family, and every unsupported or malformed key as an
 * error that names the file and the key.
 */
class LlamaConfigTest {

    @TempDir
    Path tmp;

    private int files;

    private static final String BASE = "\"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 4,"
            + " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 256";

    private LlamaConfig read(String json) throws Exception {
        Path f = tmp.resolve("config" + files++ + ".json");
        Files.writeString(f, json);
        return LlamaConfig.read(f);
    }

    private static String cfg(String modelType, String extra) {
        return "{\"model_type\": \"" + modelType + "\", " + BASE + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    private CheckpointException error(String json, String key, String... phrases) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> read(json), json);
        assertEquals(key, e.getKey(), e.getMessage());
        assertTrue(e.getMessage().contains("config") && e.getMessage().contains("'" + key + "'"), e.getMessage());
        for (String p : phrases) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' missing in: " + e.getMessage());
        }
        return e;
    }

    @Test
    void ropeSettingsOfBothGenerationsAreTheSame() throws Exception {
        String v4 = cfg("llama", "\"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": \"llama3\","
                + " \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                + " \"original_max_position_embeddings\": 8192}");
        String v5 = cfg("llama", "\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"llama3\","
                + " \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                + " \"original_max_position_embeddings\": 8192}");
        LlamaConfig a = read(v4);
        LlamaConfig b = read(v5);
        assertEquals(500000.0, b.getRopeTheta()); // the 5.x theta is read, not the 10000 default
        assertEquals(RopeScaling.Type.LLAMA3, b.getRopeScaling().getType());
        assertEquals(a.toJson(), b.toJson());
        assertEquals(a.getRopeScaling().toString(), b.getRopeScaling().toString());
        // 4.x's older "type" key, and 5.x's theta-only form
        LlamaConfig lin = read(cfg("llama", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"));
        assertEquals(RopeScaling.Type.LINEAR, lin.getRopeScaling().getType());
        assertEquals(10000.0, lin.getRopeTheta());
        LlamaConfig plain = read(cfg("llama", "\"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\":"
                + " \"default\"}"));
        assertEquals(1e6, plain.getRopeTheta());
        assertEquals(RopeScaling.Type.NONE, plain.getRopeScaling().getType());
        // identical dicts under both names are fine
        read(cfg("llama", "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, \"rope_parameters\":"
                + " {\"rope_type\": \"linear\", \"factor\": 2.0}"));
    }

    @Test
    void llama3OriginalLengthDefaultsAsTransformers5Does() throws Exception {
        LlamaConfig c = read(cfg("llama", "\"max_position_embeddings\": 4096, \"rope_parameters\": {\"rope_theta\":"
                + " 500000.0, \"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                + " \"high_freq_factor\": 4.0}"));
        assertEquals(4096, c.getRopeScaling().getOriginalMaxPositions());
        LlamaConfig top = read(cfg("llama", "\"original_max_position_embeddings\": 1024, \"rope_parameters\":"
                + " {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                + " \"original_max_position_embeddings\": 8192}"));
        assertEquals(1024, top.getRopeScaling().getOriginalMaxPositions()); // the top-level attribute wins
    }

    @Test
    void unsupportedRopeTypesAndKeysAreErrorsNamingThem() {
        error(cfg("llama", "\"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}"),
                "rope_parameters.rope_type", "'dynamic' is not supported", "default, linear, llama3, yarn");
        error(cfg("llama", "\"rope_scaling\": {\"type\": \"longrope\", \"factor\": 2.0}"), "rope_scaling.type",
                "'longrope'");
        error(cfg("llama", "\"rope_parameters\": {\"rope_type\": \"linear\"}"), "rope_parameters.factor", "missing");
        error(cfg("llama", "\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 0}"),
                "rope_parameters.factor", "> 0");
        error(cfg("llama", "\"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.5}"),
                "rope_parameters.partial_rotary_factor", "0.5");
        error(cfg("llama", "\"partial_rotary_factor\": 0.5"), "partial_rotary_factor", "only 1.0");
        error(cfg("llama", "\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\":"
                + " 4.0, \"high_freq_factor\": 1.0}"), "rope_parameters.rope_type", "low_freq_factor");
        error(cfg("llama", "\"rope_theta\": 0"), "rope_theta", "> 0");
        error(cfg("llama", "\"rope_parameters\": {\"rope_theta\": -5, \"rope_type\": \"default\"}"),
                "rope_parameters.rope_theta", "> 0");
        error(cfg("llama", "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, \"rope_parameters\":"
                + " {\"rope_type\": \"default\"}"), "rope_scaling", "differ");
        error(cfg("llama", "\"rope_scaling\": [1, 2]"), "rope_scaling", "must be an object");
    }

    @Test
    void yarnIsReadWhenItsFactorIsUnambiguous() throws Exception {
        LlamaConfig c = read(cfg("qwen2", "\"max_position_embeddings\": 131072, \"rope_parameters\": {\"rope_theta\":"
                + " 1000000.0, \"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\":"
                + " 32768}"));
        RopeScaling s = c.getRopeScaling();
        assertEquals(RopeScaling.Type.YARN, s.getType());
        assertEquals(0.1 * Math.log(4) + 1, s.getAttentionScaling(), 1e-15);
        assertEquals(32, s.getBetaFast());
        assertEquals(1, s.getBetaSlow());
        LlamaConfig m = read(cfg("llama", "\"max_position_embeddings\": 64, \"rope_parameters\": {\"rope_type\":"
                + " \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 16, \"mscale\": 0.5,"
                + " \"mscale_all_dim\": 1.0}"));
        assertEquals((0.05 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1), m.getRopeScaling().getAttentionScaling(),
                1e-15);
        // an explicit factor that disagrees with the two lengths: transformers 5.x uses the explicit one
        LlamaConfig explicit = read(cfg("qwen2", "\"max_position_embeddings\": 256, \"rope_scaling\": {\"type\":"
                + " \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 16}"));
        assertEquals(4.0, explicit.getRopeScaling().getFactor());
        assertEquals(16, explicit.getRopeScaling().getOriginalMaxPositions());
    }

    @Test
    void ropeNestedByLayerTypeGivesEachLayerItsOwn() throws Exception {
        LlamaConfig c = read(cfg("gemma2", "\"head_dim\": 16, \"rope_parameters\": {\"full_attention\":"
                + " {\"rope_type\": \"default\", \"rope_theta\": 1000000.0}, \"sliding_attention\": {\"rope_type\":"
                + " \"default\", \"rope_theta\": 10000.0}}"));
        assertEquals(10000.0, c.getRope(0).getTheta()); // layer 0 slides (gemma2 default)
        assertEquals(1e6, c.getRope(1).getTheta());
        assertEquals(1e6, c.getRopeTheta());
    }

    @Test
    void modelTypeMustBeASupportedString() {
        error(cfg("gpt2", ""), "model_type", "'gpt2' is not supported", "llama, mistral, qwen2, gemma2");
        error("{\"model_type\": {}, " + BASE + "}", "model_type", "must be a string");
        error("{" + BASE + "}", "model_type", "missing");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "llama|\"vocab_size\": \"259\"|vocab_size|must be an integer",
        "llama|\"hidden_size\": 64.5|hidden_size|must be an integer",
        "llama|\"max_position_embeddings\": -1|max_position_embeddings|[1, ",
        "llama|\"head_dim\": 0|head_dim|[1, ",
        "llama|\"head_dim\": -4|head_dim|[1, ",
        "llama|\"num_key_value_heads\": -2|num_key_value_heads|[1, ",
        "llama|\"num_hidden_layers\": 3000000000|num_hidden_layers|[1, ",
        "llama|\"rms_norm_eps\": 0|rms_norm_eps|> 0",
        "llama|\"tie_word_embeddings\": \"true\"|tie_word_embeddings|true or false",
        "llama|\"eos_token_id\": \"x\"|eos_token_id|must be an integer",
        "llama|\"eos_token_id\": [2, -1]|eos_token_id|[0, ",
        "llama|\"hidden_act\": \"relu\"|hidden_act|'relu' is not supported",
        "llama|\"attention_bias\": 1|attention_bias|true or false",
        "llama|\"quantization_config\": {\"quant_method\": \"gptq\"}|quantization_config|quantized",
        "mistral|\"sliding_window\": 0|sliding_window|[1, ",
        "mistral|\"sliding_window\": -7|sliding_window|[1, ",
        "qwen2|\"use_sliding_window\": \"yes\"|use_sliding_window|true or false",
        "qwen2|\"sliding_window\": 4, \"use_sliding_window\": true, \"layer_types\": [\"full_attention\"]"
                + "|layer_types|has 1 entries",
        "qwen2|\"layer_types\": [\"full_attention\", \"chunked_attention\", \"full_attention\", \"full_attention\"]"
                + "|layer_types[1]|supported: full_attention, sliding_attention",
        "gemma2|\"hidden_activation\": \"gelu\"|hidden_activation|gelu_pytorch_tanh",
        "gemma2|\"use_bidirectional_attention\": true|use_bidirectional_attention|not supported",
        "gemma2|\"attn_logit_softcapping\": 0|attn_logit_softcapping|> 0",
        "gemma2|\"query_pre_attn_scalar\": -1|query_pre_attn_scalar|> 0",
    })
    void malformedOrUnsupportedValuesNameTheKey(String type, String extra, String key, String phrase) {
        error(cfg(type, extra), key, phrase);
    }

    @Test
    void inconsistentSizesNameTheKeys() {
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> read(cfg("llama", "\"num_key_value_heads\": 3")));
        assertTrue(e.getMessage().contains("num_attention_heads (4) must be a multiple of num_key_value_heads (3)"),
                e.getMessage());
    }

    @Test
    void windowsFollowEachFamilysRule() throws Exception {
        // Mistral: transformers' default window 4096 on every layer; null turns it off
        LlamaConfig m = read(cfg("mistral", ""));
        assertEquals(4096, m.getSlidingWindow(3));
        assertEquals(-1, read(cfg("mistral", "\"sliding_window\": null")).getSlidingWindow(0));
        // Qwen2: off unless use_sliding_window; then layers >= max_window_layers
        assertEquals(-1, read(cfg("qwen2", "\"sliding_window\": 131072, \"max_window_layers\": 2"))
                .getSlidingWindow(3));
        LlamaConfig q = read(cfg("qwen2", "\"sliding_window\": 8, \"use_sliding_window\": true,"
                + " \"max_window_layers\": 2"));
        assertEquals(Arrays.asList(-1, -1, 8, 8), windows(q));
        LlamaConfig qe = read(cfg("qwen2", "\"sliding_window\": 8, \"use_sliding_window\": true, \"layer_types\":"
                + " [\"sliding_attention\", \"full_attention\", \"full_attention\", \"sliding_attention\"]"));
        assertEquals(Arrays.asList(8, -1, -1, 8), windows(qe));
        // Gemma 2: even layers by default (sliding if (i + 1) % 2), or layer_types
        LlamaConfig g = read(cfg("gemma2", "\"sliding_window\": 5"));
        assertEquals(Arrays.asList(5, -1, 5, -1), windows(g));
        assertEquals(256, g.getQueryPreAttnScalar());
        assertEquals(50, g.getAttnLogitSoftcap());
        assertEquals(30, g.getFinalLogitSoftcap());
        assertTrue(g.isTieWordEmbeddings());
        assertEquals(GatedMlp.Activation.GELU_TANH, g.getActivation());
        LlamaConfig gn = read(cfg("gemma2", "\"attn_logit_softcapping\": null, \"final_logit_softcapping\": null"));
        assertEquals(0, gn.getAttnLogitSoftcap());
        assertEquals(0, gn.getFinalLogitSoftcap());
        // Llama: transformers' Llama has no window; a stray sliding_window is ignored as there
        assertEquals(-1, read(cfg("llama", "\"sliding_window\": 4")).getSlidingWindow(0));
    }

    private static java.util.List<Integer> windows(LlamaConfig c) {
        java.util.List<Integer> w = new java.util.ArrayList<>();
        for (int i = 0; i < c.getNumLayers(); i++) {
            w.add(c.getSlidingWindow(i));
        }
        return w;
    }

    @Test
    void familyDefaultsAndBiases() throws Exception {
        LlamaConfig q = read(cfg("qwen2", "\"attention_bias\": false"));
        assertTrue(q.isQkvBias() && !q.isOutputBias()); // Qwen2: q, k, v biases always, none on o
        LlamaConfig l = read(cfg("llama", "\"attention_bias\": true, \"mlp_bias\": true"));
        assertTrue(l.isQkvBias() && l.isOutputBias() && l.isMlpBias());
        LlamaConfig mis = read(cfg("mistral", "\"attention_bias\": true")); // not a Mistral key: ignored
        assertTrue(!mis.isQkvBias() && !mis.isOutputBias());
        assertEquals(1, l.getBosTokenId()); // transformers' LlamaConfig defaults
        assertEquals(Arrays.asList(2), l.getEosTokenIds());
        assertEquals(-1, read(cfg("llama", "\"bos_token_id\": null")).getBosTokenId());
        assertEquals(Arrays.asList(2, 7), read(cfg("llama", "\"eos_token_id\": [2, 7]")).getEosTokenIds());
        // unknown keys change nothing in transformers either: read fine
        read(cfg("llama", "\"some_future_key\": {\"x\": 1}, \"torch_dtype\": \"bfloat16\", \"use_cache\": true"));
    }

    @Test
    void notJsonAndNotAnObjectNameTheFile() throws Exception {
        Path f = tmp.resolve("bad.json");
        Files.writeString(f, "{\"model_type\": ");
        CheckpointException e = assertThrows(CheckpointException.class, () -> LlamaConfig.read(f));
        assertTrue(e.getMessage().startsWith(f.toString()) && e.getMessage().contains("not valid JSON"),
                e.getMessage());
        Files.writeString(f, "[1, 2]");
        assertTrue(assertThrows(CheckpointException.class, () -> LlamaConfig.read(f)).getMessage()
                .contains("not a JSON object"));
        Files.write(f, new byte[17 << 20]); // not read into memory whole: refused by its size
        assertTrue(assertThrows(CheckpointException.class, () -> LlamaConfig.read(f)).getMessage()
                .contains("a config.json is a few KiB"));
        Path dir = Files.createDirectories(tmp.resolve("config.json"));
        assertTrue(assertThrows(CheckpointException.class, () -> LlamaConfig.read(dir)).getMessage()
                .contains("is a directory"));
    }

    @Test
    void toJsonRoundTripsEveryFamily() throws Exception {
        for (LlamaConfig.Family f : LlamaConfig.Family.values()) {
            LlamaConfig.Builder b = LlamaConfig.builder().optFamily(f).setSizes(64, 96, 3, 4, 2, 256);
            if (f != LlamaConfig.Family.LLAMA) {
                b.optSlidingWindow(7, 1);
            }
            LlamaConfig c = b.optRope(123456, RopeScaling.linear(3)).build();
            JsonObject json = c.toJson();
            LlamaConfig back = read(json.toString());
            assertEquals(json, back.toJson(), f.toString());
            assertEquals(JsonParser.parseString(json.toString()), back.toJson());
        }
    }
}
