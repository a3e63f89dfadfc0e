package org.flashdjl.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.safetensors.SafeDType;
import org.flashdjl.examples.tokenizer.ByteTokenizer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The main job end to end, in-process: demo default, --model, window + sinks, dtype, batch, report, serving-dir;
 * and every failure as one {@code error:} line on stderr with exit 2 (command-line mistake) or 1 (failure), no stack
 * trace unless --verbose.
 */
class FlashDjlCliTest {

    @TempDir
    static Path tmp;

    static Path tiny;
    static Path short24;

    @BeforeAll
    static void setUp() throws Exception {
        tiny = TinyModels.write(tmp.resolve("tiny"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F16, 31);
        // a byte-vocabulary model with only 24 positions
        short24 = TinyModels.write(tmp.resolve("short"), LlamaConfig.builder().setSizes(64, 96, 2, 4, 2,
                ByteTokenizer.VOCAB_SIZE).optMaxPositions(24).optSpecialTokens(ByteTokenizer.BOS, ByteTokenizer.EOS)
                .build(), SafeDType.F32, 32);
        System.setProperty("flashdjl.demo.dir", tmp.resolve("demo").toString());
    }

    /** Runs the CLI; returns {stdout, stderr}. */
    static String[] run(int expectedCode, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = FlashDjlCli.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String o = out.toString(StandardCharsets.UTF_8);
        String e = err.toString(StandardCharsets.UTF_8);
        assertEquals(expectedCode, code, String.join(" ", args) + "\nstdout: " + o + "\nstderr: " + e);
        return new String[] {o, e};
    }

    /** Runs a failing command: exit code, one error line on stderr naming the problem, nothing on stdout. */
    static String fails(int code, String phrase, String... args) {
        String[] r = run(code, args);
        assertEquals("", r[0], "stdout of a failure");
        String first = r[1].lines().findFirst().orElse("");
        assertTrue(first.startsWith("error: ") && first.contains(phrase), "'" + phrase + "' expected in: " + r[1]);
        assertFalse(r[1].contains("\tat "), "a stack trace without --verbose: " + r[1]);
        return first;
    }

    @Test
    void defaultRunWritesTheDemoCheckpointAndStreams() {
        String[] r = run(0, "--max-new-tokens", "5", "--prompt", "Hi");
        assertTrue(r[0].contains("offline demo"), r[0]);
        assertTrue(r[0].contains("decode    :") && r[0].contains("tokens/s"), r[0]);
        assertTrue(r[0].contains("KV cache  :") && r[0].contains("fp32 K+V"), r[0]);
        assertTrue(r[1].contains("5/5 tokens"), "progress bar: " + r[1]);
        assertTrue(Files.isRegularFile(tmp.resolve("demo/model.safetensors")));
        // second run reuses it, same greedy text
        String[] again = run(0, "--max-new-tokens", "5", "--prompt", "Hi", "--no-progress");
        assertEquals(textOf(r[0]), textOf(again[0]));
        assertEquals("", again[1]);
    }

    static String textOf(String out) {
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
    void theCheckpointsOwnWindowsApplyUnlessAWindowIsGiven() throws Exception {
        Path gemma = TinyModels.write(tmp.resolve("gemma"), LlamaConfig.builder().optFamily(LlamaConfig.Family.GEMMA2)
                .setSizes(64, 96, 4, 4, 2, ByteTokenizer.VOCAB_SIZE).optSlidingWindow(6, 0)
                .optSpecialTokens(ByteTokenizer.BOS, ByteTokenizer.EOS).build(), SafeDType.F32, 34);
        String[] r = run(0, "--model", gemma.toString(), "--max-new-tokens", "12", "--no-progress");
        assertTrue(r[0].contains("the checkpoint's sliding window 6 on 2 of 4 layers (streaming caches there, contiguous elsewhere)"),
                r[0]);
        assertTrue(r[0].contains("window=checkpoint"), r[0]);
        String[] w = run(0, "--model", gemma.toString(), "--max-new-tokens", "3", "--window", "3", "--no-progress");
        assertTrue(w[0].contains("sliding window 3 (streaming cache"), w[0]);
    }

    @Test
    void float16ComputeOnTheCpuWhenAskedFor() {
        String[] r = run(0, "--model", tiny.toString(), "--max-new-tokens", "4", "--dtype", "float16",
                "--no-progress", "--ignore-eos");
        assertTrue(r[0].contains("fp16") && r[0].contains("ignoring EOS"), r[0]);
        fails(2, "--dtype must be float16 or float32, got bfloat16", "--dtype", "bfloat16");
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

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "unknown attention backend 'nope'|--backend nope",
        "--sinks needs --window|--sinks 3",
        "--max-new-tokens must be an integer|--max-new-tokens zero",
        "--temperature must be a finite number|--temperature NaN",
        "--top-p: top_p must be in (0, 1]|--top-p 1.5",
        "unknown option --frobnicate|--frobnicate",
        "--device must be cpu or gpu|--device tpu",
        "--window must be an integer in [1, |--window 0",
        // values that cannot fit are refused before anything is allocated for them
        "leaves no room for a prompt within the model's 4096 positions|--max-new-tokens 2000000000",
        "(a streaming cache of 2000000000 slots per layer) needs|--window 2000000000",
        "--window 2000000000 + --sinks 2000000000 exceed 2147483647 cache slots|--window 2000000000 --sinks 2000000000",
        "(a streaming cache of 2000000100 slots per layer) needs|--window 2000000000 --sinks 100",
        "of token ids, more than a quarter of the JVM heap|--window 8 --max-new-tokens 2000000000",
        "cannot hold the batch: the longest request alone needs|batch --pages 1 --page-size 1",
        "up to 4 requests at once need|batch --pages 8 --page-size 16 --max-new-tokens 30",
        "the page pool) needs|batch --pages 2000000000 --page-size 2000000000",
        "--heads (6) must be a multiple of --kv-heads (4)|report --heads 6 --kv-heads 4",
        "the reference's [B, H, L, L] score matrices) needs|report --seq 100000",
        "--seq must be an integer|report --seq -3",
    })
    void commandLineMistakesExit2WithOneErrorLineOnStderr(String phrase, String args) {
        fails(2, phrase, args.split(" "));
    }

    @Test
    void promptsLongerThanThePositionsAreRefusedOrTruncatedWhenAsked() {
        String longPrompt = "0123456789012345678901234567890123456789"; // 40 bytes + BOS > 24 positions
        fails(2, "the prompt is 41 tokens; the model's positions end at 24 (max_position_embeddings); "
                + "--truncate-prompt left|right keeps the last|first 20 tokens", "--model", short24.toString(),
                "--prompt", longPrompt, "--max-new-tokens", "4");
        fails(2, "with --max-new-tokens 10 it runs past the model's 24 positions", "--model", short24.toString(),
                "--prompt", "0123456789012345", "--max-new-tokens", "10");
        String[] left = run(0, "--model", short24.toString(), "--prompt", longPrompt, "--max-new-tokens", "4",
                "--truncate-prompt", "left", "--no-progress");
        assertTrue(left[0].contains("prompt    : 20 tokens (truncated by --truncate-prompt left)"), left[0]);
        assertTrue(textOf(left[0]).startsWith("\u202601234567890123456789"), left[0]);
        String[] right = run(0, "--model", short24.toString(), "--prompt", longPrompt, "--max-new-tokens", "4",
                "--truncate-prompt", "right", "--no-progress");
        assertTrue(right[0].contains("prompt    : 20 tokens (truncated"), right[0]);
        // a stream through fixed-size caches may run past the positions (StreamingLLM)
        run(0, "--model", short24.toString(), "--prompt", "0123456789", "--max-new-tokens", "30", "--window", "8",
                "--no-progress");
        fails(2, "prompt 0 is 41 tokens", "batch", "--model", short24.toString(), "--prompt", longPrompt,
                "--max-new-tokens", "4");
    }

    @Test
    void failuresExit1WithoutAStackTraceUnlessVerbose() throws Exception {
        fails(1, "model directory not found", "--model", tmp.resolve("missing").toString());
        Path nan = tmp.resolve("nan");
        TinyModels.write(nan, TinyModels.config(ByteTokenizer.VOCAB_SIZE, false, RopeScaling.none()), SafeDType.F32,
                33);
        Path f = nan.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putFloat((int) (8 + n), Float.NaN); // first tensor
        Files.write(f, all);
        String line = fails(1, "element 0 is NaN", "--model", nan.toString());
        assertTrue(line.contains(f.toString()), line);
        String[] verbose = run(1, "--model", nan.toString(), "--verbose");
        assertTrue(verbose[1].startsWith("error: ") && verbose[1].contains("\tat "), verbose[1]);
    }

    @Test
    void helpGoesToStdout() {
        String[] r = run(0, "--help");
        assertTrue(r[0].contains("usage: flashdjl") && r[0].contains("--truncate-prompt"), r[0]);
        assertEquals("", r[1]);
    }
}
