package org.flashdjl.engine.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.flashdjl.ops.attention.AttentionSpec;

import org.junit.jupiter.api.Test;

/** The decoder block's spec carries the family's scale and softcap (Gemma 2) next to the window and sinks. */
class DecoderAttentionSpecTest {

    private static DecoderAttentionBlock.Builder base() {
        return DecoderAttentionBlock.builder().setHiddenSize(64).setNumHeads(4).optNumKvHeads(2).optBackend("math");
    }

    @Test
    void scaleAndSoftcapReachTheSpec() {
        AttentionSpec plain = base().build().getSpec();
        assertNull(plain.getScale());
        assertEquals(0f, plain.getSoftcap());
        AttentionSpec gemma = base().optScale(0.25f).optSoftcap(50f).optSlidingWindow(5).optSinkTokens(2).build()
                .getSpec();
        assertEquals(0.25f, gemma.getScale());
        assertEquals(50f, gemma.getSoftcap());
        assertEquals(4, gemma.getWindowLeft());
        assertEquals(2, gemma.getSinkTokens());
        assertEquals(true, gemma.isCausal());
    }

    @Test
    void badScaleOrSoftcapIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> base().optScale(0));
        assertThrows(IllegalArgumentException.class, () -> base().optScale(Float.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> base().optSoftcap(-1));
        assertThrows(IllegalArgumentException.class, () -> base().optSoftcap(Float.NaN));
    }
}
