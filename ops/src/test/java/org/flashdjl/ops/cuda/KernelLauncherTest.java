package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The CUDA launcher's choice between a kernel and its persistent form (no device needed). */
class KernelLauncherTest {

    @Test
    void shortWorkPerHeadRunsThePersistentFormOnAtMostOneCtaPerSm() {
        // causal kernel (32 query blocks per head at most): 4k tokens x 16 heads x 4 sequences = 2048 blocks
        assertEquals(132, KernelLauncher.persistentCtas(32, 16, 4, 32, 132));
        // fewer blocks than SMs: one CTA per block
        assertEquals(40, KernelLauncher.persistentCtas(5, 8, 1, 16, 132));
        assertEquals(1, KernelLauncher.persistentCtas(1, 1, 1, 16, 132));
    }

    @Test
    void longWorkAndKernelsWithoutAPersistentFormRunPerTile() {
        assertEquals(0, KernelLauncher.persistentCtas(33, 16, 4, 32, 132));  // causal 4k + 1 block
        assertEquals(0, KernelLauncher.persistentCtas(17, 16, 4, 16, 132));  // plain past its 16 blocks
        assertEquals(0, KernelLauncher.persistentCtas(1, 16, 4, 0, 132));    // general / packed / hd 256: none
    }

    @Test
    void aHugeGridStaysWithinTheSmCount() {
        assertEquals(132, KernelLauncher.persistentCtas(16, 65535, 65535, 16, 132));
    }
}
