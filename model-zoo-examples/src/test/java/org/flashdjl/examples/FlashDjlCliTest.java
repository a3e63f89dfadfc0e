package org.flashdjl.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** The main job end to end: demo default, --model, window + sinks, batch, report, serving-dir, errors. */
class FlashDjlCliTest {

    @TempDir
    static Path tmp;

    static Path tiny;

    @BeforeAll
    static void setUp() throws Exception {
        tiny = TinyModels.write(tmp.resolve("tiny"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F16, 31);
        System.setProperty("flashdjl.demo.dir", tmp.resolve("demo").toString());
    }

    private static String[] run(int expectedCode, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = FlashDjlCli.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String o = out.toString(StandardCharsets.UTF_8);
        assertEquals(expectedCode, code, o);
        return new String[] {o, err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void defaultRunWritesTheDemoCheckpointAndStreams() {
        String[] r = run(0, "--max-new-tokens", "5", "--prompt", "Hi");
        assertTrue(r[0].contains("offline demo"), r[0]);
        assertTrue(r[0].contains("decode    :") && r[0].contains("tokens/s"), r[0]);
        assertTrue(r[0].contains("KV cache  :"), r[0]);
        assertTrue(r[1].contains("5/5 tokens"), "progress bar: " + r[1]);
        assertTrue(Files.isRegularFile(tmp.resolve("demo/model.safetensors")));
        // second run reuses it, same greedy text
        String[] again = run(0, "--max-new-tokens", "5", "--prompt", "Hi", "--no-progress");
        assertEquals(textOf(r[0]), textOf(again[0]));
        assertEquals("", again[1]);
    }

    private static String textOf(String out) {
        return out.substring(out.indexOf("---\n") + 4, out.lastIndexOf("\n---"));
    }

    @Test
    void modelWindowSinksAndBackendOptions() {
        String[] r = run(0, "generate", "--model", tiny.toString(), "--max-new-tokens", "6", "--window", "4",
                "--sinks", "2", "--backend", "math", "--temperature", "0.7", "--top-k", "10", "--seed", "3");
        assertTrue(r[0].contains("sliding window 4 + 2 sinks (streaming cache"), r[0]);
        assertTrue(r[0].contains("temperature=0.7"), r[0]);
        String[] inCache = run(0, "--model", tiny.toString(), "--max-new-tokens", "3", "--window", "4",
                "--rope-positions", "in-cache", "--no-progress");
        assertTrue(inCache[0].contains("in-cache RoPE positions"), inCache[0]);
    }

    @Test
    void batchReportAndServingDir() throws Exception {
        String[] b = run(0, "batch", "--model", tiny.toString(), "--max-new-tokens", "4", "--max-batch", "2",
                "--prompt", "a", "--prompt", "bb", "--prompt", "ccc");
        assertTrue(b[0].contains("continuous batching, 3 prompts"), b[0]);
        assertTrue(b[0].contains("[2] (joins at step"), b[0]);
        String[] report = run(0, "--report", "--seq", "33", "--heads", "4", "--kv-heads", "2");
        assertTrue(report[0].contains("ring") && report[0].contains("paged") && report[0].contains("online"),
                report[0]);
        String[] report2 = run(0, "report", "--seq", "17");
        assertTrue(report2[0].contains("== sample"), report2[0]);
        Path dir = tmp.resolve("served");
        String[] s = run(0, "serving-dir", "--out", dir.toString(), "--model", tiny.toString());
        assertTrue(s[0].contains("wrote DJL Serving model directory"), s[0]);
        assertTrue(Files.readString(dir.resolve("serving.properties")).contains("translator="));
    }

    @Test
    void errorsAreOneClearLine() {
        String[] r = run(2, "--backend", "nope");
        assertTrue(r[0].contains("unknown attention backend 'nope'"), r[0]);
        r = run(2, "--model", tmp.resolve("missing").toString());
        assertTrue(r[0].contains("model directory not found"), r[0]);
        r = run(2, "--sinks", "3");
        assertTrue(r[0].contains("--sinks needs --window"), r[0]);
        r = run(2, "--max-new-tokens", "zero");
        assertTrue(r[0].contains("--max-new-tokens must be an integer"), r[0]);
        r = run(0, "--help");
        assertTrue(r[0].contains("usage: flashdjl"), r[0]);
    }
}
