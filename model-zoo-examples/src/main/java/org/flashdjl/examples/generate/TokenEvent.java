package org.flashdjl.examples.generate;

/** One generated token, as reported to a {@link GenerationListener}. */
public final class TokenEvent {

    private final long sequenceId;
    private final int tokenId;
    private final String text;
    private final int index;
    private final int maxNewTokens;
    private final long elapsedNanos;
    private final long kvBytes;

    /**
     * Creates an event.
     *
     * @param sequenceId the sequence (0 for single-stream generation)
     * @param tokenId the token id
     * @param text the text this token completed (possibly empty)
     * @param index how many tokens were generated so far, this one included
     * @param maxNewTokens the sequence's limit
     * @param elapsedNanos time since generation of this sequence started (prefill included)
     * @param kvBytes KV storage held now
     */
    public TokenEvent(long sequenceId, int tokenId, String text, int index, int maxNewTokens, long elapsedNanos,
            long kvBytes) {
        this.sequenceId = sequenceId;
        this.tokenId = tokenId;
        this.text = text;
        this.index = index;
        this.maxNewTokens = maxNewTokens;
        this.elapsedNanos = elapsedNanos;
        this.kvBytes = kvBytes;
    }

    /** @return the sequence id */
    public long getSequenceId() {
        return sequenceId;
    }

    /** @return the token id */
    public int getTokenId() {
        return tokenId;
    }

    /** @return the text this token completed */
    public String getText() {
        return text;
    }

    /** @return tokens generated so far, this one included */
    public int getIndex() {
        return index;
    }

    /** @return the sequence's max new tokens */
    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /** @return nanoseconds since the sequence started */
    public long getElapsedNanos() {
        return elapsedNanos;
    }

    /** @return KV storage bytes held now */
    public long getKvBytes() {
        return kvBytes;
    }
}
