package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The parts of {@link GpuTiming} that need no device: argument checks and the median. */
class GpuTimingTest {

    @Test
    void backToBackRefusesEmptyRoundsBeforeTouchingTheDevice() {
        int[] launches = {0};
        Runnable launch = () -> launches[0]++;
        IllegalArgumentException n = assertThrows(IllegalArgumentException.class,
                () -> GpuTiming.backToBackMs(launch, 0, 5, 5, "x"));
        assertEquals("n 0 and rounds 5 must be >= 1", n.getMessage());
        IllegalArgumentException rounds = assertThrows(IllegalArgumentException.class,
                () -> GpuTiming.backToBackMs(launch, 20, 0, 5, "x"));
        assertEquals("n 20 and rounds 0 must be >= 1", rounds.getMessage());
        assertEquals(0, launches[0], "nothing was launched");
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, GpuTiming.median(new double[] {1, 2, 9}));
        assertEquals(2.5, GpuTiming.median(new double[] {1, 2, 3, 9}));
    }
}
