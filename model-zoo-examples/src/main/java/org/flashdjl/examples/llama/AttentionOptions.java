package org.flashdjl.examples.llama;

import org.flashdjl.engine.cache.StreamingKvCache;

import java.util.Objects;

/**
 * How a model's decoder layers compute attention: the backend, and an optional sliding window with sink tokens
 * (StreamingLLM) kept in a fixed-size streaming cache, with original or in-cache RoPE positions. A window set
 * here overrides the checkpoint's {@code sliding_window}.
 */
public final class AttentionOptions {

    private final String backend;
    private final int slidingWindow;
    private final int sinkTokens;
    private final boolean streamingCache;
    private final StreamingKvCache.Positions ropePositions;

    private AttentionOptions(Builder b) {
        this.backend = b.backend;
        this.slidingWindow = b.slidingWindow;
        this.sinkTokens = b.sinkTokens;
        this.streamingCache = b.streamingCache;
        this.ropePositions = b.ropePositions;
    }

    /** @return the defaults: backend {@code auto}, the checkpoint's window, no sinks */
    public static AttentionOptions defaults() {
        return builder().build();
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the backend name */
    public String getBackend() {
        return backend;
    }

    /** @return keys a query sees (itself included), 0 for the checkpoint's setting, -1 for unbounded */
    public int getSlidingWindow() {
        return slidingWindow;
    }

    /** @return sink tokens */
    public int getSinkTokens() {
        return sinkTokens;
    }

    /**
     * Returns whether a windowed model streams through fixed-size {@link StreamingKvCache}s (sinks + window,
     * backed by {@code BlockKvCache}) rather than keeping every token in a contiguous cache.
     *
     * @return true for the streaming cache (the default)
     */
    public boolean isStreamingCache() {
        return streamingCache;
    }

    /** @return the RoPE positions of the streaming cache */
    public StreamingKvCache.Positions getRopePositions() {
        return ropePositions;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "backend=" + backend + ", window=" + (slidingWindow == 0 ? "checkpoint" : slidingWindow < 0
                ? "off" : String.valueOf(slidingWindow)) + ", sinks=" + sinkTokens;
    }

    /** Builds {@link AttentionOptions}. */
    public static final class Builder {
        private String backend = "auto";
        private int slidingWindow;
        private int sinkTokens;
        private boolean streamingCache = true;
        private StreamingKvCache.Positions ropePositions = StreamingKvCache.Positions.ORIGINAL;

        private Builder() {}

        /**
         * Sets whether a windowed model uses the fixed-size streaming cache (default true) or keeps every token.
         *
         * @param streaming true for the streaming cache
         * @return this builder
         */
        public Builder optStreamingCache(boolean streaming) {
            this.streamingCache = streaming;
            return this;
        }

        /**
         * Sets the RoPE positions of the streaming cache: {@code ORIGINAL} stream positions (default, exact
         * against the masked full computation) or {@code IN_CACHE} slot indices (StreamingLLM).
         *
         * @param positions the positions
         * @return this builder
         */
        public Builder optRopePositions(StreamingKvCache.Positions positions) {
            this.ropePositions = Objects.requireNonNull(positions, "positions");
            return this;
        }

        /**
         * Sets the backend (default {@code auto}).
         *
         * @param backend a dense backend name or {@code auto}
         * @return this builder
         */
        public Builder optBackend(String backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * Sets the sliding window: keys a query sees, itself included; -1 turns windowing off, 0 keeps the
         * checkpoint's setting.
         *
         * @param window the window
         * @return this builder
         */
        public Builder optSlidingWindow(int window) {
            if (window < -1) {
                throw new IllegalArgumentException("window must be >= 1, 0 (checkpoint) or -1 (off), got " + window);
            }
            this.slidingWindow = window;
            return this;
        }

        /**
         * Sets the sink tokens kept visible with a window.
         *
         * @param sinks the count, {@code >= 0}
         * @return this builder
         */
        public Builder optSinkTokens(int sinks) {
            if (sinks < 0) {
                throw new IllegalArgumentException("sinks must be >= 0, got " + sinks);
            }
            this.sinkTokens = sinks;
            return this;
        }

        /**
         * Builds the options.
         *
         * @return the options
         * @throws IllegalArgumentException when window + sinks overflow an int (no cache could hold them)
         */
        public AttentionOptions build() {
            if ((long) slidingWindow + sinkTokens > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("window (" + slidingWindow + ") + sinks (" + sinkTokens
                        + ") exceed " + Integer.MAX_VALUE + " cache slots");
            }
            return new AttentionOptions(this);
        }
    }
}
