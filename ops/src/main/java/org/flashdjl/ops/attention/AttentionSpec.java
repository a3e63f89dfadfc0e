package org.flashdjl.ops.attention;

import org.flashdjl.ops.Checks;

import java.util.Arrays;
import java.util.Objects;

/**
 * What an attention call computes, independent of the backend that computes it.
 *
 * <p>The one definition every backend implements (positions as in {@link MaskRule}):
 *
 * <ul>
 *   <li>score {@code s = scale * q.k}, scale defaulting to {@code 1/sqrt(headDim)};
 *   <li>softcap (if {@code > 0}): {@code s = cap * tanh(s / cap)}; then ALiBi: {@code s += -slope[h] * |pos(i) - j|};
 *   <li>causal (bottom-right aligned), window bounds {@code (left, right)} inclusive with {@code -1} = unbounded,
 *       and {@code sinkTokens} first keys that ignore the left bound; a hidden key contributes nothing, whatever
 *       its bits;
 *   <li>softmax accumulated in fp32 (float64 for float64 inputs), output in the input dtype; optional
 *       log-sum-exp (natural log, fp32, the output's shape without its head-dim axis: bhsd [batch, Hq, Lq],
 *       bshd [batch, Lq, Hq], varlen [totalQ, Hq]); a query row that sees no key gets output 0 and LSE {@code -inf}.
 * </ul>
 *
 * <p>Words (docs/SEMANTICS.md): a <em>window</em> is the number of most recent keys a query sees, itself included
 * (Hugging Face's {@code sliding_window}); {@link Builder#optSlidingWindow} turns it into the bounds
 * {@code (window - 1, -1)}, the only place that conversion happens. The <em>bounds</em> are offsets from the query's
 * position, as FlashAttention's {@code window_size}.
 *
 * <p>Build with {@link #builder()}; instances are immutable.
 */
public final class AttentionSpec {

    private final Float scale;
    private final boolean causal;
    private final int windowLeft;
    private final int windowRight;
    private final int sinkTokens;
    private final float[] alibiSlopes; // [Hq] or null
    private final float softcap;
    private final boolean returnLse;
    private final QkvLayout layout;

    private AttentionSpec(Builder b) {
        this.scale = b.scale;
        this.causal = b.causal;
        this.windowLeft = b.windowLeft;
        this.windowRight = b.windowRight;
        this.sinkTokens = b.sinkTokens;
        this.alibiSlopes = b.alibiSlopes == null ? null : b.alibiSlopes.clone();
        this.softcap = b.softcap;
        this.returnLse = b.returnLse;
        this.layout = b.layout;
    }

    /**
     * Returns a builder with defaults: no mask, default scale, layout bhsd, no LSE.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns a builder initialised from this spec.
     *
     * @return a builder holding this spec's values
     */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.scale = scale;
        b.causal = causal;
        b.windowLeft = windowLeft;
        b.windowRight = windowRight;
        b.sinkTokens = sinkTokens;
        b.alibiSlopes = alibiSlopes;
        b.softcap = softcap;
        b.returnLse = returnLse;
        b.layout = layout;
        return b;
    }

    /**
     * Returns the scale for a head dim: the explicit scale or {@code 1/sqrt(headDim)}.
     *
     * @param headDim the query/key head dim
     * @return the softmax scale
     */
    public float scaleFor(long headDim) {
        return scale != null ? scale : (float) (1.0 / Math.sqrt(headDim));
    }

    /**
     * Returns the explicit scale, or null for the default {@code 1/sqrt(headDim)}.
     *
     * @return the scale or null
     */
    public Float getScale() {
        return scale;
    }

    /**
     * Returns whether the causal (bottom-right aligned) mask applies.
     *
     * @return true for causal attention
     */
    public boolean isCausal() {
        return causal;
    }

    /**
     * Returns how many keys before a query's position it sees (inclusive), or -1 for unbounded.
     *
     * @return the left window
     */
    public int getWindowLeft() {
        return windowLeft;
    }

    /**
     * Returns how many keys after a query's position it sees (inclusive), or -1 for unbounded.
     *
     * @return the right window
     */
    public int getWindowRight() {
        return windowRight;
    }

    /**
     * Returns the number of leading keys that are always visible on the window's left side (StreamingLLM sinks).
     *
     * @return the sink token count
     */
    public int getSinkTokens() {
        return sinkTokens;
    }

    /**
     * Returns a copy of the ALiBi slopes, one per query head, or null when ALiBi is off.
     *
     * @return the slopes [Hq] or null
     */
    public float[] getAlibiSlopes() {
        return alibiSlopes == null ? null : alibiSlopes.clone();
    }

    /**
     * Returns whether ALiBi is on.
     *
     * @return true when slopes were given
     */
    public boolean hasAlibi() {
        return alibiSlopes != null;
    }

    /**
     * Returns the softcap, 0 when off.
     *
     * @return the softcap
     */
    public float getSoftcap() {
        return softcap;
    }

    /**
     * Returns whether any key can be masked for some query (causal, a bounded window).
     *
     * @return true if the mask is not all-visible
     */
    public boolean hasMask() {
        return causal || windowLeft >= 0 || windowRight >= 0;
    }

    /**
     * Returns whether the log-sum-exp is returned with the output.
     *
     * @return true to return the LSE
     */
    public boolean isReturnLse() {
        return returnLse;
    }

    /**
     * Returns the layout of q, k, v and the output.
     *
     * @return the layout
     */
    public QkvLayout getLayout() {
        return layout;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "AttentionSpec{scale=" + (scale == null ? "1/sqrt(d)" : scale) + ", causal=" + causal + ", window=("
                + windowLeft + ", " + windowRight + "), sinks=" + sinkTokens + ", alibi="
                + (alibiSlopes == null ? "off" : alibiSlopes.length + " slopes") + ", softcap=" + softcap
                + ", lse=" + returnLse + ", layout=" + layout.name().toLowerCase() + "}";
    }

    /** {@inheritDoc} */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof AttentionSpec)) {
            return false;
        }
        AttentionSpec s = (AttentionSpec) o;
        return Objects.equals(scale, s.scale) && causal == s.causal && windowLeft == s.windowLeft
                && windowRight == s.windowRight && sinkTokens == s.sinkTokens
                && Arrays.equals(alibiSlopes, s.alibiSlopes) && softcap == s.softcap && returnLse == s.returnLse
                && layout == s.layout;
    }

    /** {@inheritDoc} */
    @Override
    public int hashCode() {
        return Objects.hash(scale, causal, windowLeft, windowRight, sinkTokens, Arrays.hashCode(alibiSlopes),
                softcap, returnLse, layout);
    }

    /** Builds an {@link AttentionSpec}; every option is optional ({@code optX}). */
    public static final class Builder {
        private Float scale;
        private boolean causal;
        private int windowLeft = -1;
        private int windowRight = -1;
        private int sinkTokens;
        private float[] alibiSlopes;
        private float softcap;
        private boolean returnLse;
        private QkvLayout layout = QkvLayout.BHSD;

        private Builder() {}

        /**
         * Sets the softmax scale (default {@code 1/sqrt(headDim)}).
         *
         * @param scale a finite positive scale
         * @return this builder
         */
        public Builder optScale(float scale) {
            if (!(scale > 0) || Float.isInfinite(scale)) {
                throw new IllegalArgumentException("scale must be finite and > 0, got " + scale);
            }
            this.scale = scale;
            return this;
        }

        /**
         * Sets the bottom-right aligned causal mask: query i sees key j iff {@code j <= i + Lk - Lq}.
         *
         * @param causal true for causal attention
         * @return this builder
         */
        public Builder optCausal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /**
         * Sets a sliding window: each query sees the {@code window} most recent keys, itself included (Hugging
         * Face's {@code sliding_window}; with {@link #optCausal causal} nothing after it). The same as
         * {@code optWindowBounds(window - 1, -1)}.
         *
         * @param window the keys a query sees, {@code >= 1}
         * @return this builder
         */
        public Builder optSlidingWindow(int window) {
            Checks.checkAtLeast("window", window, 1, "the keys a query sees, itself included");
            return optWindowBounds(window - 1, -1);
        }

        /**
         * Sets the window bounds, inclusive on both sides; -1 means unbounded on that side.
         *
         * @param left keys before the query's position that stay visible, or -1
         * @param right keys after the query's position that stay visible, or -1
         * @return this builder
         */
        public Builder optWindowBounds(int left, int right) {
            Checks.checkAtLeast("windowLeft", left, -1, "-1 = unbounded");
            Checks.checkAtLeast("windowRight", right, -1, "-1 = unbounded");
            this.windowLeft = left;
            this.windowRight = right;
            return this;
        }

        /**
         * Sets the number of leading keys that are always visible whatever the window (StreamingLLM sinks).
         *
         * @param sinkTokens the sink count, {@code >= 0}
         * @return this builder
         */
        public Builder optSinkTokens(int sinkTokens) {
            Checks.checkAtLeast("sinkTokens", sinkTokens, 0, "0 = no sinks");
            this.sinkTokens = sinkTokens;
            return this;
        }

        /**
         * Sets the ALiBi slopes, one per query head ({@code null} turns ALiBi off).
         *
         * @param slopes finite slopes [Hq], or null
         * @return this builder
         */
        public Builder optAlibiSlopes(float[] slopes) {
            if (slopes != null) {
                if (slopes.length == 0) {
                    throw new IllegalArgumentException("alibiSlopes must hold one slope per query head, got 0");
                }
                for (float s : slopes) {
                    if (!Float.isFinite(s)) {
                        throw new IllegalArgumentException("alibiSlopes must be finite, got " + s);
                    }
                }
            }
            this.alibiSlopes = slopes == null ? null : slopes.clone();
            return this;
        }

        /**
         * Sets the softcap: {@code s = cap * tanh(s / cap)} before masking; 0 turns it off.
         *
         * @param softcap 0 or a finite positive cap
         * @return this builder
         */
        public Builder optSoftcap(float softcap) {
            if (!(softcap >= 0) || Float.isInfinite(softcap)) {
                throw new IllegalArgumentException("softcap must be 0 (off) or finite and > 0, got " + softcap);
            }
            this.softcap = softcap;
            return this;
        }

        /**
         * Asks for the log-sum-exp (natural log, fp32, the output's shape without its last axis: bhsd
         * [batch, Hq, Lq], bshd [batch, Lq, Hq], varlen [totalQ, Hq]).
         *
         * @param returnLse true to return it
         * @return this builder
         */
        public Builder optReturnLse(boolean returnLse) {
            this.returnLse = returnLse;
            return this;
        }

        /**
         * Sets the layout of q, k, v and the output (default bhsd).
         *
         * @param layout the layout
         * @return this builder
         */
        public Builder optLayout(QkvLayout layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
            return this;
        }

        /**
         * Builds the spec.
         *
         * @return the spec
         */
        public AttentionSpec build() {
            return new AttentionSpec(this);
        }
    }
}
