package org.flashdjl.examples.generate;

import java.util.Arrays;

/** A finished generation: the new tokens and text, why it stopped, and timings. */
public final class GenerationResult {

    /** Why generation stopped. */
    public enum FinishReason {
        /** An EOS token was generated. */
        EOS,
        /** The max new tokens were generated. */
        LENGTH,
        /** The caller cancelled it ({@link GenerationHandle#cancel}); the tokens so far are kept. */
        CANCELLED,
        /** It ran past its time limit ({@link RollingBatchScheduler#submit}); the tokens so far are kept. */
        TIMEOUT
    }

    private final int[] promptIds;
    private final int[] tokenIds;
    private final String text;
    private final FinishReason finishReason;
    private final long prefillNanos;
    private final long decodeNanos;
    private final long kvBytes;

    /**
     * Creates a result.
     *
     * @param promptIds the prompt ids (BOS included when added)
     * @param tokenIds the generated ids (EOS included when it stopped generation)
     * @param text the generated text
     * @param finishReason why it stopped
     * @param prefillNanos time to the first token
     * @param decodeNanos time of the following tokens
     * @param kvBytes peak KV storage bytes
     */
    public GenerationResult(int[] promptIds, int[] tokenIds, String text, FinishReason finishReason,
            long prefillNanos, long decodeNanos, long kvBytes) {
        this.promptIds = promptIds.clone();
        this.tokenIds = tokenIds.clone();
        this.text = text;
        this.finishReason = finishReason;
        this.prefillNanos = prefillNanos;
        this.decodeNanos = decodeNanos;
        this.kvBytes = kvBytes;
    }

    /** @return a copy of the prompt ids */
    public int[] getPromptIds() {
        return promptIds.clone();
    }

    /** @return a copy of the generated ids */
    public int[] getTokenIds() {
        return tokenIds.clone();
    }

    /** @return the generated text */
    public String getText() {
        return text;
    }

    /** @return why it stopped */
    public FinishReason getFinishReason() {
        return finishReason;
    }

    /** @return nanoseconds of the prompt pass (to the first token) */
    public long getPrefillNanos() {
        return prefillNanos;
    }

    /** @return nanoseconds of the decode steps after the first token */
    public long getDecodeNanos() {
        return decodeNanos;
    }

    /** @return decode tokens per second (tokens after the first over their time), 0 when none */
    public double getDecodeTokensPerSecond() {
        int steps = tokenIds.length - 1;
        return steps <= 0 || decodeNanos == 0 ? 0 : steps / (decodeNanos / 1e9);
    }

    /** @return peak KV storage in bytes */
    public long getKvBytes() {
        return kvBytes;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "GenerationResult{tokens=" + Arrays.toString(tokenIds) + ", finish=" + finishReason + "}";
    }
}
