package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.engine.nn.RopeScaling;
import org.flashdjl.examples.demo.DemoCheckpoint;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.safetensors.SafeDType;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The CPU side of {@link ContextParallelPrefillBench}: options, the measurement lines, the report (scaling,
 * logits against the one-GPU run, the budget), the fault verdict, and the whole launcher with ranks as threads on
 * a tiny checkpoint ({@code --local}), the flow the GPU run takes with one process per GPU.
 */
class ContextParallelPrefillBenchTest {

    @TempDir
    Path tmp;

    @Test
    void optionsHaveDefaultsAndRefuseBadValuesByName() {
        PrefillBenchOptions o = PrefillBenchOptions.parse("--model", "/m");
        assertArrayEquals(new int[] {1, 2, 4}, o.worlds());
        assertEquals(List.of("ring", "ulysses"), o.methods());
        assertArrayEquals(new long[] {32768, 131072}, o.lengths());
        assertEquals(3, o.reps());
        assertEquals("float16", o.dtype());
        assertTrue(Double.isNaN(o.budget()));
        assertEquals(-1, o.killRank());
        assertFalse(o.local());

        o = PrefillBenchOptions.parse("--model", "/m", "--worlds", "1,2", "--methods", "Ulysses", "--lengths", "100",
                "--reps", "5", "--budget", "0.02", "--local", "--window", "64", "--sinks", "4");
        assertArrayEquals(new int[] {1, 2}, o.worlds());
        assertEquals(List.of("ulysses"), o.methods());
        assertEquals(0.02, o.budget());
        assertTrue(o.local());
        assertEquals(64, o.window());

        String[][] bad = {
            {}, // no model
            {"--model", "/m", "--nope", "1"},
            {"--model", "/m", "--worlds", "2,1"},
            {"--model", "/m", "--worlds", "0"},
            {"--model", "/m", "--methods", "ring,star"},
            {"--model", "/m", "--lengths", "32k"},
            {"--model", "/m", "--dtype", "bfloat16"},
            {"--model", "/m", "--budget", "0"},
            {"--model", "/m", "--reps", "1,2"},
            {"--model", "/m", "--kill-rank", "4"},
            {"--model", "/m", "--kill-rank", "1", "--local"},
            {"--model", "/m", "--worlds", "1", "--kill-rank", "0"},
            {"--model"},
            {"/m"},
        };
        String[] says = {"--model DIR is required", "unknown option --nope", "ascending", ">= 1", "'star'",
            "'32k'", "'bfloat16'", "--budget must be", "takes one number", "0..3", "not with --local",
            ">= 2 ranks", "needs a value", "unexpected argument '/m'"};
        for (int i = 0; i < bad.length; i++) {
            String[] args = bad[i];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PrefillBenchOptions.parse(args), String.join(" ", args));
            assertTrue(e.getMessage().contains(says[i]), String.join(" ", args) + ": " + e.getMessage());
        }
    }

    @Test
    void childArgumentsCarryTheOptions() {
        PrefillBenchOptions o = PrefillBenchOptions.parse("--model", "/m", "--worlds", "1,2,4", "--methods", "ring",
                "--lengths", "1000,2000", "--reps", "2", "--warmup", "0", "--budget", "0.5", "--timeout-s", "20",
                "--kill-rank", "3", "--kill-after-layer", "5", "--out", "/o", "--seed", "9");
        PrefillBenchOptions c = PrefillBenchOptions.parse(o.childArgs().toArray(new String[0]));
        assertTrue(c.child());
        assertEquals(o.model(), c.model());
        assertEquals(o.methods(), c.methods());
        assertArrayEquals(o.lengths(), c.lengths());
        assertEquals(2, c.reps());
        assertEquals(0, c.warmup());
        assertEquals(0.5, c.budget());
        assertEquals(20, c.timeoutSeconds());
        assertEquals(3, c.killRank());
        assertEquals(5, c.killAfterLayer());
        assertEquals(o.out(), c.out());
        assertEquals(9, c.seed());
        assertEquals(4, c.faultWorld());
    }

    @Test
    void measurementLinesRoundTrip() {
        PrefillMeasurement m = new PrefillMeasurement(4, "ring", 131072, new double[] {812.5, 800.25, 830}, 1234,
                PrefillMeasurement.fileName(4, "ring", 131072));
        PrefillMeasurement back = PrefillMeasurement.parse(m.toLine());
        assertEquals(m.toLine(), back.toLine());
        assertEquals(812.5, back.medianMs());
        assertEquals("logits-w4-ring-L131072.f32", back.logitsFile());
        assertEquals(2.5, new PrefillMeasurement(1, "single", 1, new double[] {1, 4, 2, 3}, 0, "f").medianMs());
        for (String line : new String[] {"CP_PREFILLX world=1", "CP_PREFILL world=1 method=ring",
            "CP_PREFILL world=x method=ring length=1 ttft_ms=1 top1=0 logits=f", "CP_PREFILL world"}) {
            assertThrows(IllegalArgumentException.class, () -> PrefillMeasurement.parse(line), line);
        }
    }

    @Test
    void reportScalesAgainstOneGpuAndJudgesTheLogits() throws Exception {
        float[] base = {1f, -2f, 3.5f, 0.25f};
        write("logits-w1-single-L100.f32", base);
        write("logits-w2-ring-L100.f32", new float[] {1.001f, -2f, 3.5f, 0.25f});
        write("logits-w2-ulysses-L100.f32", new float[] {1f, -2f, 3.49f, 0.25f});
        write("logits-w4-ring-L100.f32", new float[] {1f, -2f, 3.5f, 3.75f}); // top-1 moves to index 3
        List<PrefillMeasurement> ms = List.of(
                new PrefillMeasurement(2, "ulysses", 100, new double[] {500}, 2, "logits-w2-ulysses-L100.f32"),
                new PrefillMeasurement(1, "single", 100, new double[] {1000, 1100, 900}, 2,
                        "logits-w1-single-L100.f32"),
                new PrefillMeasurement(2, "ring", 100, new double[] {625}, 2, "logits-w2-ring-L100.f32"));
        List<PrefillBenchReport.Row> rows = PrefillBenchReport.rows(ms, tmp);
        assertEquals(3, rows.size());
        assertEquals(1, rows.get(0).world());
        assertEquals(1.0, rows.get(0).efficiency());
        PrefillBenchReport.Row ring = rows.get(1);
        assertEquals("ring", ring.method());
        assertEquals(1.6, ring.speedup(), 1e-12);
        assertEquals(0.8, ring.efficiency(), 1e-12);
        assertEquals(0.001, ring.maxAbsDiff(), 1e-6);
        assertEquals(1.0, rows.get(2).efficiency(), 1e-12);
        assertEquals(0.01, rows.get(2).maxAbsDiff(), 1e-6);
        assertTrue(PrefillBenchReport.passed(rows, 0.02));
        assertFalse(PrefillBenchReport.passed(rows, 0.005), "Ulysses' 0.01 exceeds a 0.005 budget");
        assertTrue(PrefillBenchReport.passed(rows, Double.NaN));
        String md = PrefillBenchReport.markdown(rows, 0.005);
        assertTrue(md.contains("| ring | 100 | 2 | 625.0 | 1.60x | 80% | 0.00100 | yes | yes |"), md);
        assertTrue(md.contains("| ulysses | 100 | 2 | 500.0 | 2.00x | 100% | 0.0100 | yes | NO |"), md);
        assertTrue(md.contains("| single | 100 | 1 | 1000.0 | 1.00x | 100% | 0.00 | yes | (baseline) |"), md);
        String json = PrefillBenchReport.json(ring, "NVIDIA H200");
        assertTrue(json.contains("\"gpus\":2") && json.contains("\"efficiency\":0.800000")
                && json.contains("\"top1_same\":true"), json);

        List<PrefillBenchReport.Row> moved = PrefillBenchReport.rows(List.of(ms.get(1),
                new PrefillMeasurement(4, "ring", 100, new double[] {300}, 3, "logits-w4-ring-L100.f32")), tmp);
        assertFalse(moved.get(1).top1Same());
        assertFalse(PrefillBenchReport.passed(moved, 10), "a changed top-1 token fails whatever the budget");

        write("logits-w2-ring-L200.f32", base);
        List<PrefillBenchReport.Row> alone = PrefillBenchReport.rows(List.of(
                new PrefillMeasurement(2, "ring", 200, new double[] {1}, 2, "logits-w2-ring-L200.f32")), tmp);
        assertTrue(Double.isNaN(alone.get(0).efficiency()), "no one-GPU run of that length: n/a");
        assertTrue(PrefillBenchReport.markdown(alone, 1).contains("| n/a | n/a | n/a |"));

        write("logits-w2-ring-L100.f32", new float[] {1f, Float.NaN, 3.5f, 0.25f});
        assertFalse(PrefillBenchReport.passed(PrefillBenchReport.rows(ms, tmp), 10), "NaN logits fail");
        write("logits-w2-ring-L100.f32", new float[] {1f});
        assertThrows(IllegalArgumentException.class, () -> PrefillBenchReport.rows(ms, tmp));
    }

    @Test
    void budgetComesFromTheCheckpointsReference() throws Exception {
        assertTrue(Double.isNaN(PrefillBenchReport.budgetFrom(tmp)));
        Files.writeString(tmp.resolve("reference.json"), "{\"prompt_ids\": [1, 2], \"max_abs_fp16_vs_fp32\": "
                + "0.0123, \"torch_version\": \"2.11\"}");
        assertEquals(0.0246, PrefillBenchReport.budgetFrom(tmp), 1e-12);
    }

    @Test
    void faultVerdictNeedsEverySurvivorToFailInTimeAndReportsWhoNamedTheDeadRank() {
        String ringNeighbour = "CP_LAYER rank 0 prefill 1 layer 1\nCP_GROUP_FAILED rank 0: batchIsendIrecv on rank 0"
                + " timed out after 20 s waiting for rank(s) [send to 1, recv from 3] (NCCL, device 0, world 4); the"
                + " communicator was aborted";
        String farRank = "CP_GROUP_FAILED rank 3: batchIsendIrecv on rank 3 timed out after 20 s waiting for"
                + " rank(s) [send to 0, recv from 2] (NCCL, device 3, world 4); the communicator was aborted";
        String collective = "CP_GROUP_FAILED rank 2: allGather on rank 2 timed out after 20 s waiting for the other"
                + " ranks (NCCL, device 2, world 4); the communicator was aborted";
        List<PrefillBenchReport.Survivor> s = List.of(new PrefillBenchReport.Survivor(0, 3, ringNeighbour, 20_100),
                new PrefillBenchReport.Survivor(2, 3, collective, 20_300),
                new PrefillBenchReport.Survivor(3, 3, farRank, 20_200));
        PrefillBenchReport.FaultVerdict v = PrefillBenchReport.judgeFault(1, 20, 60, s);
        assertTrue(v.passed(), String.join("\n", v.lines()));
        assertEquals(List.of(0), v.namedBy(), "only the op with rank 1 as a peer names it");
        assertTrue(v.lines().get(v.lines().size() - 1).startsWith("CP_FAULT PASSED"));

        assertFalse(PrefillBenchReport.judgeFault(1, 20, 60, List.of(new PrefillBenchReport.Survivor(0, 3,
                ringNeighbour, 81_000))).passed(), "past timeout + slack");
        assertFalse(PrefillBenchReport.judgeFault(1, 20, 60, List.of(new PrefillBenchReport.Survivor(0, 0,
                "CP_PREFILL ...", 1000))).passed(), "a survivor that finished did not notice the death");
        assertFalse(PrefillBenchReport.judgeFault(1, 20, 60, List.of(new PrefillBenchReport.Survivor(0, -1,
                "[launcher: still running]", 90_000))).passed(), "a hanging survivor");
        assertFalse(PrefillBenchReport.judgeFault(1, 20, 60, List.of()).passed(), "no survivors, no verdict");
        PrefillBenchReport.FaultVerdict local = PrefillBenchReport.judgeFault(2, 1, 60, List.of(
                new PrefillBenchReport.Survivor(0, 3, "CP_GROUP_FAILED rank 0: allGatherLongs on rank 0 timed out"
                        + " after 1 s waiting for rank 2 (local process group of 3 ranks)", 1100)));
        assertEquals(List.of(0), local.namedBy());
    }

    /** The whole launcher, ranks as threads: worlds 1, 2 and 3, ring and Ulysses, on a 12-head fp32 checkpoint. */
    @Test
    void localLauncherRunsEveryWorldAndComparesTheLogits() throws Exception {
        Path model = tmp.resolve("model");
        LlamaConfig config = LlamaConfig.builder().setSizes(96, 128, 2, 12, 4, 256)
                .optRope(10000, RopeScaling.none()).optSpecialTokens(1, 2).build();
        DemoCheckpoint.write(model, config, 17, SafeDType.F32);
        Path out = tmp.resolve("out");
        PrefillBenchOptions o = PrefillBenchOptions.parse("--model", model.toString(), "--worlds", "1,2,3",
                "--lengths", "13,20", "--reps", "2", "--warmup", "1", "--dtype", "float32", "--backend", "math",
                "--budget", "1e-4", "--local", "--out", out.toString(), "--timeout-s", "30");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int code;
        try (PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
            code = ContextParallelPrefillBench.launch(o, ps);
        }
        String text = buf.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, text);
        assertTrue(text.contains("CP_PREFILL_BENCH PASSED"), text);
        for (String row : new String[] {"| single | 13 | 1 |", "| ring | 13 | 2 |", "| ulysses | 13 | 3 |",
            "| ring | 20 | 3 |", "| ulysses | 20 | 2 |"}) {
            assertTrue(text.contains(row), row + " missing:\n" + text);
        }
        List<String> json = Files.readAllLines(out.resolve("cp-prefill.jsonl"));
        assertEquals(2 * (1 + 2 * 2), json.size(), String.join("\n", json));
        for (String f : new String[] {"logits-w1-single-L13.f32", "logits-w3-ulysses-L20.f32"}) {
            assertEquals(256, PrefillBenchReport.readLogits(out.resolve(f)).length, f);
        }
    }

    private void write(String name, float[] values) throws Exception {
        PrefillBenchReport.writeLogits(tmp.resolve(name), values);
    }
}
