package org.flashdjl.examples.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;

import com.google.gson.JsonArray;
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
import java.util.function.Consumer;

/**
 * Broken checkpoints fail with a {@link CheckpointException} that names the file and the tensor or key, before
 * anything large is allocated, and leave the caller's manager as it was.
 */
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
        return load(dir, DataType.FLOAT32);
    }

    private static CheckpointException load(Path dir, DataType type) {
        return assertThrows(CheckpointException.class, () -> {
            try (NDManager m = NDManager.newBaseManager()) {
                LlamaLoader.load(dir, m, AttentionOptions.defaults(), type);
            }
        });
    }

    private static void editConfig(Path dir, Consumer<JsonObject> edit) throws Exception {
        Path cfg = dir.resolve("config.json");
        JsonObject o = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
        edit.accept(o);
        Files.writeString(cfg, o.toString());
    }

    /** The header of a safetensors file. */
    static JsonObject header(Path f) throws Exception {
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return JsonParser.parseString(new String(all, 8, (int) n, StandardCharsets.UTF_8)).getAsJsonObject();
    }

    // Rewrites the header of model.safetensors with an edit, keeping the data section.
    private static void editHeader(Path dir, Consumer<JsonObject> edit) throws Exception {
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonObject h = header(f);
        edit.accept(h);
        byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[8 + json.length + all.length - 8 - (int) n];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length);
        System.arraycopy(json, 0, out, 8, json.length);
        System.arraycopy(all, 8 + (int) n, out, 8 + json.length, all.length - 8 - (int) n);
        Files.write(f, out);
    }

    // Overwrites one float32 element of a tensor in model.safetensors.
    private static void poke(Path dir, String tensor, int index, float value) throws Exception {
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        long begin = header(f).getAsJsonObject(tensor).getAsJsonArray("data_offsets").get(0).getAsLong();
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putFloat((int) (8 + n + begin + 4L * index), value);
        Files.write(f, all);
    }

    private static JsonArray array(long... values) {
        JsonArray a = new JsonArray();
        for (long v : values) {
            a.add(v);
        }
        return a;
    }

    private static void assertNames(CheckpointException e, Path file, String tensor, String... phrases) {
        assertEquals(file, e.getFile(), e.getMessage());
        assertEquals(tensor, e.getTensor(), e.getMessage());
        for (String p : phrases) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' missing in: " + e.getMessage());
        }
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
        assertEquals("num_attention_heads", e.getKey());
        assertTrue(e.getMessage().contains("config.json: key 'num_attention_heads': required key is missing"),
                e.getMessage());
    }

    @Test
    void shapeMismatchNamesFileTensorAndBothShapes() throws Exception {
        Path d = copy("shape");
        editConfig(d, o -> o.addProperty("intermediate_size", 128)); // the file holds 96
        assertNames(load(d), d.resolve("model.safetensors"), "model.layers.0.mlp.gate_proj.weight", "(96, 64)",
                "(128, 64)");
    }

    @Test
    void anAbsurdLayerCountIsRefusedAgainstTheTensorsBeforeAnythingIsBuilt() throws Exception {
        Path d = copy("layers");
        editConfig(d, o -> o.addProperty("num_hidden_layers", 2_000_000_000));
        long t0 = System.nanoTime();
        CheckpointException e = load(d);
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "took too long: something was built first");
        assertEquals("num_hidden_layers", e.getKey());
        assertTrue(e.getMessage().contains("is 2000000000") && e.getMessage().contains("layers 0..1 only"),
                e.getMessage());
        editConfig(d, o -> o.addProperty("num_hidden_layers", 1));
        CheckpointException fewer = load(d);
        assertEquals("num_hidden_layers", fewer.getKey());
        assertTrue(fewer.getMessage().contains("holds layer 1 (model.layers.1."), fewer.getMessage());
    }

    @Test
    void headerShapeDisagreeingWithTheByteSpanIsRefused() throws Exception {
        Path d = copy("span");
        editHeader(d, h -> h.getAsJsonObject("model.norm.weight").add("shape", array(65)));
        assertNames(load(d), d.resolve("model.safetensors"), "model.norm.weight", "data_offsets span");
    }

    @Test
    void overlappingDataOffsetsAreRefused() throws Exception {
        Path d = copy("overlap");
        editHeader(d, h -> {
            // norm.weight [64] F32 takes 256 bytes: point it at the embedding's first 256 bytes
            JsonArray emb = h.getAsJsonObject("model.embed_tokens.weight").getAsJsonArray("data_offsets");
            long b = emb.get(0).getAsLong();
            h.getAsJsonObject("model.norm.weight").add("data_offsets", array(b, b + 256));
        });
        CheckpointException e = load(d);
        assertEquals(d.resolve("model.safetensors"), e.getFile());
        assertTrue(e.getMessage().contains("overlap") && e.getMessage().contains("model.embed_tokens.weight")
                && e.getMessage().contains("model.norm.weight"), e.getMessage());
    }

    @Test
    void byteCountsThatOverflowAreRefused() throws Exception {
        Path d = copy("overflow");
        editHeader(d, h -> {
            JsonObject t = new JsonObject();
            t.addProperty("dtype", "F32");
            t.add("shape", array(1L << 62));
            t.add("data_offsets", array(0, 0));
            h.add("huge", t);
        });
        assertNames(load(d), d.resolve("model.safetensors"), "huge", "beyond 2^63");
    }

    @Test
    void wrongJsonTypesInTheHeaderAreRefused() throws Exception {
        String[][] cases = {
            {"dtype", "5", "dtype must be a string"},
            {"dtype", "{}", "dtype must be a string"},
            {"shape", "[1.5]", "shape must hold integers"},
            {"shape", "\"64\"", "shape must be a list of integers"},
            {"shape", "[-64]", "shape must hold integers >= 0"},
            {"data_offsets", "[\"a\", 1]", "data_offsets must hold integers"},
            {"data_offsets", "[0]", "data_offsets must be [begin, end]"},
        };
        for (String[] c : cases) {
            Path d = copy("types-" + c[0]);
            editHeader(d, h -> h.getAsJsonObject("model.norm.weight").add(c[0], JsonParser.parseString(c[1])));
            assertNames(load(d), d.resolve("model.safetensors"), "model.norm.weight", c[2]);
        }
        Path d = copy("types-entry");
        editHeader(d, h -> h.add("model.norm.weight", JsonParser.parseString("[1, 2]")));
        assertNames(load(d), d.resolve("model.safetensors"), "model.norm.weight", "not an object");
    }

    @Test
    void unknownDtypeNamesTheTensorAndTheSupportedTypes() throws Exception {
        Path d = copy("dtype");
        editHeader(d, h -> h.getAsJsonObject("model.norm.weight").addProperty("dtype", "F8_E4M3"));
        assertNames(load(d), d.resolve("model.safetensors"), "model.norm.weight", "F8_E4M3", "F32, F16, BF16");
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
        Files.write(f, Arrays.copyOf(all, 20)); // cut inside the header
        assertTrue(load(d).getMessage().contains("exceeds the file size"));
        Files.write(f, Arrays.copyOf(all, 5));
        assertTrue(load(d).getMessage().contains("fewer than the 8-byte header length"));
    }

    @Test
    void missingTensorNamesItAndItsShape() throws Exception {
        Path d = copy("missing");
        editHeader(d, h -> h.remove("model.layers.1.self_attn.k_proj.weight"));
        assertNames(load(d), d.resolve("model.safetensors"), "model.layers.1.self_attn.k_proj.weight", "missing",
                "(32, 64)");
    }

    @Test
    void unusedTensorsAreErrorsExceptKnownHarmlessOnes() throws Exception {
        Path d = TinyModels.write(tmp.resolve("unused"), org.flashdjl.examples.llama.LlamaConfig.builder()
                .setSizes(64, 96, 2, 4, 2, 256).optAttentionBias(true).build(), SafeDType.F32, 9);
        editConfig(d, o -> o.addProperty("attention_bias", false)); // the file holds biases the config does not use
        assertNames(load(d), d.resolve("model.safetensors"), "model.layers.0.self_attn.q_proj.bias",
                "not used by this llama model", "attention_bias", "7 more unused");
        // older checkpoints' rotary_emb.inv_freq: recomputed from the config, logged
        Path inv = copy("invfreq");
        editHeader(inv, h -> {
            JsonObject t = new JsonObject();
            t.addProperty("dtype", "F32");
            t.add("shape", array(0));
            t.add("data_offsets", array(0, 0));
            h.add("model.layers.0.self_attn.rotary_emb.inv_freq", t);
        });
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaLoader.load(inv, m, AttentionOptions.defaults(), DataType.FLOAT32);
        }
    }

    @Test
    void anLmHeadBesideTiedEmbeddingsMustDuplicateThem() throws Exception {
        Path d = tmp.resolve("tied");
        TinyModels.write(d, TinyModels.config(256, false, RopeScaling.none()), SafeDType.F32, 9);
        // the untied file holds an lm_head different from the embeddings: tying it is ambiguous
        editConfig(d, o -> o.addProperty("tie_word_embeddings", true));
        assertNames(load(d), d.resolve("model.safetensors"), "lm_head.weight", "differs from");
        // point lm_head at a copy of the embedding bytes: a harmless duplicate
        editHeader(d, h -> h.add("lm_head.weight", h.getAsJsonObject("model.embed_tokens.weight").deepCopy()));
        // (same offsets: overlapping, refused as such) -> write a real duplicate instead
        assertTrue(load(d).getMessage().contains("overlap"));
        Path dup = tmp.resolve("tied-dup");
        TinyModels.write(dup, TinyModels.config(256, true, RopeScaling.none()), SafeDType.F32, 9);
        try (SafetensorsFile sf = SafetensorsFile.open(dup.resolve("model.safetensors"))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String name : sf.getTensors().keySet()) {
                w.add(name, SafeDType.F32, sf.info(name).getShape().getShape(), sf.readFloats(name));
            }
            w.add("lm_head.weight", SafeDType.F32, sf.info("model.embed_tokens.weight").getShape().getShape(),
                    sf.readFloats("model.embed_tokens.weight"));
            w.write(dup.resolve("with-head.safetensors.tmp"));
        }
        Files.move(dup.resolve("with-head.safetensors.tmp"), dup.resolve("model.safetensors"),
                StandardCopyOption.REPLACE_EXISTING);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(dup, m, AttentionOptions.defaults(), DataType.FLOAT32);
            assertTrue(model.getConfig().isTieWordEmbeddings());
        }
    }

    @Test
    void nanAndInfiniteWeightsAreRefusedAndTheManagerIsUnchanged() throws Exception {
        Path d = copy("nan");
        poke(d, "model.layers.1.mlp.down_proj.weight", 17, Float.NaN);
        try (NDManager m = NDManager.newBaseManager()) {
            int before = ((BaseNDManager) m).getManagedArrays().size();
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> LlamaLoader.load(d, m, AttentionOptions.defaults(), DataType.FLOAT32));
            assertNames(e, d.resolve("model.safetensors"), "model.layers.1.mlp.down_proj.weight", "element 17",
                    "NaN");
            assertEquals(before, ((BaseNDManager) m).getManagedArrays().size(), "arrays left on the manager");
        }
        Path inf = copy("inf");
        poke(inf, "model.norm.weight", 3, Float.NEGATIVE_INFINITY);
        assertNames(load(inf), inf.resolve("model.safetensors"), "model.norm.weight", "element 3", "Infinity");
        // a finite fp32 weight beyond fp16's range cannot be loaded as float16
        Path big = copy("big");
        poke(big, "model.norm.weight", 5, 1e5f);
        assertNames(load(big, DataType.FLOAT16), big.resolve("model.safetensors"), "model.norm.weight",
                "element 5", "beyond the range of float16", "float32");
    }

    @Test
    void computeDtypesConvertOnLoadAndOthersAreRefused() throws Exception {
        Path bf16 = TinyModels.write(tmp.resolve("bf16"), TinyModels.config(256, false, RopeScaling.none()),
                SafeDType.BF16, 9);
        try (NDManager m = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.load(bf16, m, AttentionOptions.defaults(), DataType.FLOAT16);
            assertEquals(DataType.FLOAT16, model.getDataType());
            for (LlamaModel.CheckpointParameter cp : model.checkpointParameters()) {
                Parameter p = cp.parameter();
                assertEquals(DataType.FLOAT16, p.getArray().getDataType(), p.getName());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LlamaLoader.load(bf16, m, AttentionOptions.defaults(), DataType.BFLOAT16));
            assertTrue(e.getMessage().contains("float32 or float16") && e.getMessage().contains("bf16"),
                    e.getMessage());
        }
    }

    @Test
    void aDirectoryNamedLikeACheckpointFileIsNamed() throws Exception {
        Path d = copy("dirfile");
        Files.delete(d.resolve("model.safetensors"));
        Files.createDirectories(d.resolve("model.safetensors"));
        CheckpointException e = load(d);
        assertEquals(d.resolve("model.safetensors"), e.getFile());
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
        Path notDir = tmp.resolve("afile");
        Files.writeString(notDir, "x");
        assertTrue(load(notDir).getMessage().contains("is not a directory"));
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
    void tokenizerProblemsNameTheFile() throws Exception {
        Path d = copy("tok"); // vocab 256: not the byte vocabulary, so a tokenizer.json is needed
        CheckpointException none = assertThrows(CheckpointException.class,
                () -> LoadedModel.load(d, Device.cpu(), AttentionOptions.defaults()).close());
        assertEquals(d.resolve("tokenizer.json"), none.getFile());
        assertTrue(none.getMessage().contains("not found"), none.getMessage());
        Files.writeString(d.resolve("tokenizer.json"), "{\"model\": 42");
        CheckpointException bad = assertThrows(CheckpointException.class,
                () -> LoadedModel.load(d, Device.cpu(), AttentionOptions.defaults()).close());
        assertEquals(d.resolve("tokenizer.json"), bad.getFile());
        assertTrue(bad.getMessage().contains("not a valid tokenizer.json"), bad.getMessage());
        Files.delete(d.resolve("tokenizer.json"));
        Files.createDirectories(d.resolve("tokenizer.json"));
        assertTrue(assertThrows(CheckpointException.class,
                () -> LoadedModel.load(d, Device.cpu(), AttentionOptions.defaults()).close()).getMessage()
                .contains("is a directory"));
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
}
