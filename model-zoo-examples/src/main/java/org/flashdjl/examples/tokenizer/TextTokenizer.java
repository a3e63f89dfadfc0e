package org.flashdjl.examples.tokenizer;

import java.util.List;

/** Text to token ids and back, with streaming decode. */
public interface TextTokenizer extends AutoCloseable {

    /**
     * Encodes text (no special tokens added).
     *
     * @param text the text
     * @return the ids
     */
    int[] encode(String text);

    /**
     * Decodes ids to text (special tokens skipped).
     *
     * @param ids the ids
     * @return the text
     */
    String decode(int[] ids);

    /** @return the BOS id, or -1 if none */
    int getBosId();

    /** @return the ids that end generation */
    List<Integer> getEosIds();

    /**
     * Returns a decoder that turns ids into text as they arrive (multi-byte characters held until complete).
     *
     * @return a new streaming decoder
     */
    StreamingDecoder newStreamingDecoder();

    /** Releases native resources, if any. */
    @Override
    default void close() {}
}
