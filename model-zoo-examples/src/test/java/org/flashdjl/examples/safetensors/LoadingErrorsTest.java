package org.flashdjl.examples.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;

/** Broken checkpoints fail with exceptions that name the file and the tensor or key. */
class LoadingErrorsTest {

    @TempDir
    static Path tmp;

    static Path good;

    @BeforeAll
    static void write() throws Exception {
        good = TinyModels.write(tmp.resolve("good"), TinyModels.config(256, false, RopeScaling.none()),
                SafeDType.F32, 9);
    }

    private static Path copy(String name) throws Exception {
        Path d = tmp.resolve(name);
        Files.createDirectories(d);
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            Files.copy(good.resolve(f), d.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        return d;
    }

    private static CheckpointException load(Path dir) {
        return assertThrows(CheckpointException.class, () -> {
            try (NDManager m = NDManager.newBaseManager()) {
                LlamaLoader.load(dir, m, AttentionOptions.defaults(), DataType.FLOAT32);
            }
        });
    }

    private static void editConfig(Path dir, java.util.function.Consumer<JsonObject> edit) throws Exception {
        Path cfg = dir.resolve("config.json");
        JsonObject o = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
        edit.accept(o);
        Files.writeString(cfg, o.toString());
    }

    // Rewrites the header of model.safetensors with an edit, keeping the data.
    private static void editHeader(Path dir, java.util.function.Consumer<JsonObject> edit) throws Exception {
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonObject h = JsonParser.parseString(new String(all, 8, (int) n, StandardCharsets.UTF_8)).getAsJsonObject();
        edit.accept(h);
        byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[8 + json.length + all.length - 8 - (int) n];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length);
        System.arraycopy(json, 0, out, 8, json.length);
        System.arraycopy(all, 8 + (int) n, out, 8 + json.length, all.length - 8 - (int) n);
        Files.write(f, out);
    }

    @Test
    void theGoodCheckpointLoads() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            assertEquals(2, LlamaLoader.load(good, m, AttentionOptions.defaults(), DataType.FLOAT32).getLayers()
                    .size());
        }
    }

    @Test
    void missingConfigKeyNamesTheFileAndKey() throws Exception {
        Path d = copy("nokey");
        editConfig(d, o -> o.remove("num_attention_heads"));
        CheckpointException e = load(d);
        assertEquals(d.resolve("config.json"), e.getFile());
        assertEquals("num_attention_heads", e.getTensor());
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("num_attention_heads")
                && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void badConfigValuesNameTheKey() throws Exception {
        Path d = copy("badvalue");
        editConfig(d, o -> o.addProperty("hidden_size", "big"));
        assertTrue(load(d).getMessage().contains("'hidden_size'"));
        Path d2 = copy("badrope");
        editConfig(d2, o -> {
            JsonObject rs = new JsonObject();
            rs.addProperty("rope_type", "yarn");
            rs.addProperty("factor", 4);
            o.add("rope_scaling", rs);
        });
        CheckpointException e = load(d2);
        assertTrue(e.getMessage().contains("rope_scaling") && e.getMessage().contains("yarn"), e.getMessage());
    }

    @Test
    void shapeMismatchNamesFileTensorAndBothShapes() throws Exception {
        Path d = copy("shape");
        editConfig(d, o -> o.addProperty("intermediate_size", 128)); // the file holds 96
        CheckpointException e = load(d);
        assertEquals(d.resolve("model.safetensors"), e.getFile());
        assertEquals("model.layers.0.mlp.gate_proj.weight", e.getTensor());
        assertTrue(e.getMessage().contains("(96, 64)") && e.getMessage().contains("(128, 64)"), e.getMessage());
    }

    @Test
    void headerShapeDisagreeingWithTheByteSpanIsRefused() throws Exception {
        Path d = copy("span");
        editHeader(d, h -> h.getAsJsonObject("model.norm.weight").add("shape",
                JsonParser.parseString("[65]")));
        CheckpointException e = load(d);
        assertEquals("model.norm.weight", e.getTensor());
        assertTrue(e.getMessage().contains("data_offsets span"), e.getMessage());
    }

    @Test
    void unknownDtypeNamesTheTensorAndTheSupportedTypes() throws Exception {
        Path d = copy("dtype");
        editHeader(d, h -> h.getAsJsonObject("model.norm.weight").addProperty("dtype", "F8_E4M3"));
        CheckpointException e = load(d);
        assertEquals("model.norm.weight", e.getTensor());
        assertTrue(e.getMessage().contains("F8_E4M3") && e.getMessage().contains("F32, F16, BF16"), e.getMessage());
    }

    @Test
    void truncatedFileNamesTheFirstTensorPastTheEnd() throws Exception {
        Path d = copy("truncated");
        Path f = d.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - 100));
        CheckpointException e = load(d);
        assertEquals(f, e.getFile());
        assertTrue(e.getTensor() != null && e.getMessage().contains("truncated"), e.getMessage());
        // a file cut inside its header
        Files.write(f, Arrays.copyOf(all, 20));
        CheckpointException h = load(d);
        assertTrue(h.getMessage().contains("header length") && h.getMessage().contains("exceeds the file size"),
                h.getMessage());
        Files.write(f, Arrays.copyOf(all, 5));
        assertTrue(load(d).getMessage().contains("fewer than the 8-byte header length"));
    }

    @Test
    void missingTensorNamesItAndItsShape() throws Exception {
        Path d = copy("missing");
        editHeader(d, h -> h.remove("model.layers.1.self_attn.k_proj.weight"));
        CheckpointException e = load(d);
        assertEquals("model.layers.1.self_attn.k_proj.weight", e.getTensor());
        assertTrue(e.getMessage().contains("missing") && e.getMessage().contains("(32, 64)"), e.getMessage());
    }

    @Test
    void notJsonHeaderAndMissingFilesAreClear() throws Exception {
        Path d = copy("garbage");
        Path f = d.resolve("model.safetensors");
        byte[] junk = new byte[64];
        ByteBuffer.wrap(junk).order(ByteOrder.LITTLE_ENDIAN).putLong(16);
        System.arraycopy("{\"w\": [1, 2, 3, ".getBytes(StandardCharsets.UTF_8), 0, junk, 8, 16);
        Files.write(f, junk);
        assertTrue(load(d).getMessage().contains("not valid JSON"));
        Files.delete(f);
        assertTrue(load(d).getMessage().contains("no *.safetensors"));
        Files.delete(d.resolve("config.json"));
        assertTrue(load(d).getMessage().contains("config file not found"));
    }

    @Test
    void halfFloatConversionsAreExact() {
        assertEquals(1f, HalfFloats.f16ToFloat((short) 0x3c00));
        assertEquals(-2f, HalfFloats.f16ToFloat((short) 0xc000));
        assertEquals(65504f, HalfFloats.f16ToFloat((short) 0x7bff));
        assertEquals(0x1p-24f, HalfFloats.f16ToFloat((short) 0x0001));
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.f16ToFloat((short) 0x7c00));
        assertTrue(Float.isNaN(HalfFloats.f16ToFloat((short) 0x7e00)));
        assertEquals(1f, HalfFloats.bf16ToFloat((short) 0x3f80));
        assertEquals((short) 0x3f80, HalfFloats.floatToBf16(1f));
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = HalfFloats.f16ToFloat((short) bits);
            if (!Float.isNaN(f)) {
                assertEquals((short) bits, HalfFloats.floatToF16(f), "f16 round trip of 0x" + Integer.toHexString(bits));
            }
            float b = HalfFloats.bf16ToFloat((short) bits);
            if (!Float.isNaN(b)) {
                assertEquals((short) bits, HalfFloats.floatToBf16(b), "bf16 round trip of 0x"
                        + Integer.toHexString(bits));
            }
        }
        // round to nearest even: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 in f16
        assertEquals((short) 0x3c00, HalfFloats.floatToF16(1f + 0x1p-11f));
        assertEquals((short) 0x3c01, HalfFloats.floatToF16(1f + 0x1p-11f + 0x1p-20f));
    }

    @Test
    void configParsesHuggingFaceForms() throws Exception {
        Path d = copy("hfconfig");
        editConfig(d, o -> {
            JsonObject rs = new JsonObject();
            rs.addProperty("rope_type", "llama3");
            rs.addProperty("factor", 8.0);
            rs.addProperty("low_freq_factor", 1.0);
            rs.addProperty("high_freq_factor", 4.0);
            rs.addProperty("original_max_position_embeddings", 8192);
            o.add("rope_scaling", rs);
            o.add("eos_token_id", JsonParser.parseString("[2, 7]"));
        });
        LlamaConfig c = LlamaConfig.read(d.resolve("config.json"));
        assertEquals(RopeScaling.Type.LLAMA3, c.getRopeScaling().getType());
        assertEquals(Arrays.asList(2, 7), c.getEosTokenIds());
    }
}
