package org.flashdjl.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * {@code flashdjl serving-dir}: bad limits are refused before anything is written, an unwritable destination and a
 * broken checkpoint are one {@code error:} line on stderr with a non-zero exit and nothing left behind; an earlier
 * serving directory is replaced whole.
 */
class ServingDirCommandTest {

    @TempDir
    static Path tmp;

    static Path tiny;

    @BeforeAll
    static void setUp() throws Exception {
        tiny = TinyModels.write(tmp.resolve("tiny"), TinyModels.config(ByteTokenizer.VOCAB_SIZE, false,
                RopeScaling.none()), SafeDType.F32, 7);
    }

    private static String[] run(int expectedCode, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = FlashDjlCli.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String[] r = {out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
        assertEquals(expectedCode, code, "stdout: " + r[0] + "\nstderr: " + r[1]);
        assertFalse(r[1].contains("\tat "), "stack trace: " + r[1]);
        return r;
    }

    private static String siblings() throws Exception {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.joining(", "));
        }
    }

    @Test
    void limitsThatCannotWorkAreRefusedBeforeWriting() throws Exception {
        Path out = tmp.resolve("huge");
        String[] r = run(2, "serving-dir", "--out", out.toString(), "--model", tiny.toString(), "--max-new-tokens",
                "2000000000");
        assertTrue(r[1].startsWith("error: serving.properties: max_new_tokens=2000000000 is out of range: allowed"
                + " 1..1048576"), r[1]);
        r = run(1, "serving-dir", "--out", out.toString(), "--model", tiny.toString(), "--max-new-tokens", "4000");
        assertTrue(r[1].contains("max_prompt_tokens=512 + max_new_tokens=4000 = 4512 tokens exceed the model's"
                + " max_position_embeddings 2048"), r[1]);
        r = run(1, "serving-dir", "--out", out.toString(), "--model", tiny.toString(), "--kv-pages", "2000000000",
                "--kv-page-size", "1");
        assertTrue(r[1].contains("kv_num_pages=2000000000") && r[1].contains("GiB"), r[1]);
        r = run(2, "serving-dir", "--out", out.toString(), "--max-rolling-batch-size", "64",
                "--max-num-batched-tokens", "32");
        assertTrue(r[1].contains("max_num_batched_tokens=32 must be >= max_rolling_batch_size=64"), r[1]);
        assertFalse(Files.exists(out));
        assertFalse(siblings().contains(".partial"), siblings());
    }

    @Test
    void anUnwritableDestinationIsExplained() throws Exception {
        String[] r = run(1, "serving-dir", "--out", "/proc/x", "--model", tiny.toString());
        assertTrue(r[1].startsWith("error: cannot write the serving directory /proc/x: /proc does not accept a new"
                + " directory ("), r[1]);
        assertTrue(r[1].contains("it is on a 'proc' file system"), r[1]);
        Path file = tmp.resolve("a-file");
        Files.writeString(file, "x");
        r = run(1, "serving-dir", "--out", file.toString(), "--model", tiny.toString());
        assertTrue(r[1].contains("a file of that name exists"), r[1]);
        Path other = tmp.resolve("other");
        Files.createDirectories(other);
        Files.writeString(other.resolve("notes.txt"), "keep me");
        r = run(1, "serving-dir", "--out", other.toString(), "--model", tiny.toString());
        assertTrue(r[1].contains("is not a serving directory"), r[1]);
        assertEquals("keep me", Files.readString(other.resolve("notes.txt")));
    }

    @Test
    void aTruncatedCheckpointExitsNonZeroAndWritesNothing() throws Exception {
        Path broken = tmp.resolve("truncated");
        Files.createDirectories(broken);
        Files.copy(tiny.resolve("config.json"), broken.resolve("config.json"));
        byte[] st = Files.readAllBytes(tiny.resolve("model.safetensors"));
        Files.write(broken.resolve("model.safetensors"), java.util.Arrays.copyOf(st, st.length / 2));
        Path out = tmp.resolve("from-truncated");
        String[] r = run(1, "serving-dir", "--out", out.toString(), "--model", broken.toString());
        assertTrue(r[1].startsWith("error: ") && r[1].contains("model.safetensors"), r[1]);
        assertFalse(Files.exists(out));
        assertFalse(siblings().contains(".partial"), siblings());
        r = run(1, "serving-dir", "--out", out.toString(), "--model", tmp.resolve("missing").toString());
        assertTrue(r[1].contains("model directory not found"), r[1]);
    }

    @Test
    void anEarlierServingDirectoryIsReplacedWhole() throws Exception {
        Path out = tmp.resolve("served");
        String[] r = run(0, "serving-dir", "--out", out.toString(), "--model", tiny.toString(), "--max-new-tokens",
                "64");
        assertTrue(r[0].contains("wrote DJL Serving model directory"), r[0]);
        assertTrue(Files.readString(out.resolve("serving.properties")).contains("max_new_tokens=64"));
        Files.writeString(out.resolve("stale.txt"), "old");
        run(0, "serving-dir", "--out", out.toString(), "--model", tiny.toString(), "--max-new-tokens", "32");
        assertTrue(Files.readString(out.resolve("serving.properties")).contains("max_new_tokens=32"));
        assertFalse(Files.exists(out.resolve("stale.txt")));
        assertFalse(siblings().contains(".partial"), siblings());
    }
}
