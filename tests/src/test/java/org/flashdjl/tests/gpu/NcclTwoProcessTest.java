package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * NCCL across two JVM processes, one GPU each (needs 2 CUDA devices and {@code libnccl.so.2}; skipped with the
 * reason otherwise): the collectives on raw device buffers against host arithmetic, and a rank killed after the
 * rendezvous making the survivor exit with a timeout error instead of hanging; and ring / Ulysses attention on the
 * two GPUs against single-GPU flash attention ({@link DeviceAttentionCheck}).
 */
@Tag("gpu")
class NcclTwoProcessTest {

    private static final int TIMEOUT_S = 20;

    @BeforeEach
    void needsTwoGpus() {
        String skip = NcclLauncher.skipReason();
        Assumptions.assumeTrue(skip == null, skip);
    }

    @Test
    void collectivesMatchHostArithmetic() throws Exception {
        List<NcclLauncher.RankResult> results = NcclLauncher.collectives(60, 300);
        for (NcclLauncher.RankResult r : results) {
            assertEquals(0, r.exitCode(), "rank " + r.rank() + " output:\n" + r.output());
            assertTrue(r.output().contains("NCCL_WORKER_OK rank " + r.rank()), r.output());
        }
    }

    @Test
    void killedPeerMakesTheSurvivorTimeOut() throws Exception {
        NcclLauncher.RankResult r = NcclLauncher.killOne(TIMEOUT_S, 120);
        assertEquals(NcclWorker.EXIT_GROUP_FAILED, r.exitCode(), r.output());
        assertTrue(r.output().contains("NCCL_WORKER_ERROR allReduce(SUM) on rank 0 timed out after " + TIMEOUT_S
                + " s") || r.output().contains("NCCL async error"), r.output());
        // the timeout, plus abort and JVM exit, not a hang
        assertTrue(r.millis() < (TIMEOUT_S + 60) * 1000L, "rank 0 exited " + r.millis() + " ms after the kill");
    }

    @Test
    void ringAndUlyssesMatchSingleGpuFlash() throws Exception {
        List<NcclLauncher.RankResult> results = NcclLauncher.attention(false, 60, 300);
        for (NcclLauncher.RankResult r : results) {
            assertEquals(0, r.exitCode(), "rank " + r.rank() + " output:\n" + r.output());
        }
        String out = results.get(0).output();
        assertTrue(out.contains("CP_CHECK summary:") && !out.contains("| FAIL"), out);
    }
}
