package org.flashdjl.ops.testing;

import org.flashdjl.ops.attention.AttentionSpec;

import java.util.Random;

/**
 * Named option sets of the attention sweeps (dense, paged, cascade): each builds an {@link AttentionSpec} and fills
 * the equivalent {@link Reference.Options}, so the spec and its float64 reference cannot drift apart.
 */
public final class OptionSets {

    /** The option sets: every option on and off across them. */
    public static final String[] OPTIONS = {
        "none", "causal", "window", "causal+window+sinks", "alibi", "softcap+causal", "all", "scale+lse-only",
        "window-right-only", "sinks-no-window"
    };

    private OptionSets() {}

    /**
     * Builds a spec with LSE and fills the equivalent float64 reference options for an option set.
     *
     * @param option one of {@link #OPTIONS} ("scale..." draws a random scale)
     * @param hq query heads (ALiBi slopes)
     * @param ref reference options to fill
     * @param rnd random source for the scale
     * @return the spec
     */
    public static AttentionSpec spec(String option, int hq, Reference.Options ref, Random rnd) {
        AttentionSpec.Builder b = AttentionSpec.builder().optReturnLse(true);
        float[] slopes = new float[hq];
        for (int h = 0; h < hq; h++) {
            slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / hq);
        }
        boolean all = option.equals("all");
        if (option.contains("causal") || all) {
            b.optCausal(true);
            ref.causal = true;
        }
        if (option.equals("window") || all) {
            b.optWindowBounds(5, 3);
            ref.windowLeft = 5;
            ref.windowRight = 3;
        }
        if (option.equals("causal+window+sinks") || option.equals("sinks-no-window")) {
            if (option.startsWith("causal")) {
                b.optWindowBounds(7, -1);
                ref.windowLeft = 7;
            }
            b.optSinkTokens(3);
            ref.sinkTokens = 3;
        }
        if (all) {
            b.optSinkTokens(2);
            ref.sinkTokens = 2;
        }
        if (option.equals("window-right-only")) {
            b.optWindowBounds(-1, 4);
            ref.windowRight = 4;
        }
        if (option.equals("alibi") || all) {
            b.optAlibiSlopes(slopes);
            ref.alibi = slopes;
        }
        if (option.startsWith("softcap") || all) {
            b.optSoftcap(2.5f);
            ref.softcap = 2.5;
        }
        if (option.startsWith("scale")) {
            float scale = 0.3f + rnd.nextFloat();
            b.optScale(scale);
            ref.scale = scale;
        }
        return b.build();
    }
}
