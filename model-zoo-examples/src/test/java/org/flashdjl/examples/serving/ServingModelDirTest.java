package org.flashdjl.examples.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.ChunkedBytesSupplier;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.TinyModels;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The serving directory is self-contained: a JVM whose class path holds only DJL's api, its PyTorch engine and
 * their own dependencies (no FlashDJL class, no tokenizers, no JCuda) loads it through {@code Criteria} as DJL
 * Serving does, and answers exactly as this JVM (with FlashDJL on its class path) does; without the FlashDJL jar in
 * {@code libs/} the load fails.
 */
class ServingModelDirTest {

    @TempDir
    static Path tmp;

    static Path ckpt;
    static Path dir;

    /** DJL's api, its PyTorch engine, and what they need: the class path of a server that knows only DJL. */
    private static final List<String> DJL_JARS = Arrays.asList("api-", "gson-", "error_prone_annotations-", "jna-",
            "commons-compress-", "commons-io-", "commons-codec-", "slf4j-api-", "pytorch-engine-", "pytorch-jni-",
            "pytorch-native-cpu-");

    private static final String[] REQUESTS = {
        "{\"prompt\": \"Hello\", \"max_new_tokens\": 8}",
        "{\"inputs\": \"abc\", \"parameters\": {\"max_new_tokens\": 6, \"temperature\": 0.7, \"seed\": 5}}",
        "{\"prompt\": \"streamed\", \"max_new_tokens\": 5, \"stream\": true}",
        "{\"prompt\": \"x\", \"top_p\": 1e-300}",
    };

    @BeforeAll
    static void write() throws Exception {
        ckpt = TinyModels.write(tmp.resolve("ckpt"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F32, 41);
        dir = ServingModelDir.write(tmp.resolve("served"), ckpt, ServingConfig.builder().optMaxPromptTokens(64)
                .optMaxNewTokens(32).optMaxRollingBatchSize(4).build());
    }

    @Test
    void theDirectoryCarriesItsJarsKeysAndReadme() throws Exception {
        List<String> libs;
        try (Stream<Path> s = Files.list(dir.resolve("libs"))) {
            libs = s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
        for (String prefix : new String[] {"flashdjl-ops", "flashdjl-kvcache", "flashdjl-engine-ext",
            "flashdjl-model-zoo-examples", "tokenizers-", "jcuda-1", "jcuda-natives-"}) {
            assertTrue(libs.stream().anyMatch(n -> n.startsWith(prefix) && n.endsWith(".jar")), prefix + " in " + libs);
        }
        assertEquals(7, libs.size(), libs.toString());
        Properties p = new Properties();
        try (var r = Files.newBufferedReader(dir.resolve("serving.properties"))) {
            p.load(r);
        }
        assertEquals("org.flashdjl.examples.serving.LlamaServingTranslator", p.getProperty("translator"));
        assertEquals("ai.djl.nn.IdentityBlockFactory", p.getProperty("blockFactory"));
        assertEquals("false", p.getProperty("option.hasParameter"));
        assertFalse(p.containsKey("translatorFactory"), "translatorFactory= is loaded from DJL's own class loader");
        assertEquals("32", p.getProperty("max_new_tokens"));
        assertEquals(ServingConfig.fromArguments(toMap(p)).toString(), ServingConfig.builder().optMaxPromptTokens(64)
                .optMaxNewTokens(32).optMaxRollingBatchSize(4).build().toString());
        assertTrue(Files.readString(dir.resolve("README.md")).contains("djl-serving -m"));
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            assertEquals(Files.size(ckpt.resolve(f)), Files.size(dir.resolve(f)), f);
        }
    }

    private static java.util.Map<String, Object> toMap(Properties p) {
        java.util.Map<String, Object> m = new java.util.HashMap<>();
        for (String k : p.stringPropertyNames()) {
            m.put(k, p.getProperty(k));
        }
        return m;
    }

    @Test
    void aJvmWithOnlyDjlOnItsClassPathServesItLikeThisOne() throws Exception {
        List<String> expected = new ArrayList<>();
        try (ZooModel<Input, Output> m = Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir)
                .build().loadModel(); Predictor<Input, Output> p = m.newPredictor()) {
            for (String body : REQUESTS) {
                Input in = new Input();
                in.add(body);
                Output out = p.predict(in);
                String text = out.getData() instanceof ChunkedBytesSupplier
                        ? new String(((ChunkedBytesSupplier) out.getData()).getAsBytes(), StandardCharsets.UTF_8)
                        : out.getData().getAsString();
                expected.add("answer " + out.getCode() + " " + text.replace("\n", "\\n"));
            }
        }
        assertTrue(expected.get(0).startsWith("answer 200 "), expected.get(0));
        assertTrue(expected.get(3).startsWith("answer 400 "), expected.get(3));
        List<String> out = probe(dir, 0);
        assertEquals("isolated", out.get(0), String.join("\n", out));
        assertEquals("translator org.flashdjl.examples.serving.LlamaServingTranslator loaded by the model's libs/"
                + " class loader", out.get(1), String.join("\n", out));
        assertEquals(expected, out.subList(2, out.size()));
    }

    @Test
    void withoutTheFlashDjlJarTheLoadFails() throws Exception {
        Path copy = tmp.resolve("broken");
        Files.createDirectories(copy.resolve("libs"));
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, copy.resolve(f.getFileName()));
                }
            }
        }
        try (Stream<Path> s = Files.list(dir.resolve("libs"))) {
            for (Path f : (Iterable<Path>) s::iterator) {
                if (!f.getFileName().toString().startsWith("flashdjl-model-zoo-examples")) {
                    Files.copy(f, copy.resolve("libs").resolve(f.getFileName()));
                }
            }
        }
        List<String> out = probe(copy, 1);
        assertTrue(String.join("\n", out).contains("LlamaServingTranslator"), String.join("\n", out));
    }

    // Runs IsolatedServingProbe in a JVM whose class path is DJL's jars plus the probe's class alone.
    private static List<String> probe(Path modelDir, int expectedExit) throws Exception {
        Path probeDir = tmp.resolve("probe-" + System.nanoTime());
        String rel = IsolatedServingProbe.class.getName().replace('.', '/') + ".class";
        Path cls = probeDir.resolve(rel);
        Files.createDirectories(cls.getParent());
        Files.copy(Paths.get(IsolatedServingProbe.class.getResource("/" + rel).toURI()), cls);
        List<String> cp = new ArrayList<>();
        cp.add(probeDir.toString());
        for (String prefix : DJL_JARS) {
            String jar = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                    .filter(e -> Paths.get(e).getFileName().toString().startsWith(prefix) && e.endsWith(".jar"))
                    .findFirst().orElseThrow(() -> new AssertionError(prefix + "*.jar not on the test class path"));
            cp.add(jar);
        }
        List<String> cmd = new ArrayList<>(Arrays.asList(Paths.get(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx512m", "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1",
                "-Dai.djl.pytorch.num_interop_threads=1"));
        for (String key : new String[] {"DJL_CACHE_DIR", "ENGINE_CACHE_DIR"}) {
            if (System.getProperty(key) != null) {
                cmd.add("-D" + key + "=" + System.getProperty(key));
            }
        }
        cmd.addAll(Arrays.asList("-cp", String.join(File.pathSeparator, cp), IsolatedServingProbe.class.getName(),
                modelDir.toString()));
        cmd.addAll(Arrays.asList(REQUESTS));
        Path log = probeDir.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "probe did not finish");
        String all = stdout + "\n" + Files.readString(log);
        if (expectedExit == 0) {
            assertEquals(0, p.exitValue(), all);
        } else {
            assertNotEquals(0, p.exitValue(), all);
            return Arrays.asList(all.split("\n"));
        }
        return Arrays.stream(stdout.split("\n")).filter(l -> !l.isEmpty()).collect(Collectors.toList());
    }
}
