package org.flashdjl.examples.tokenizer;

/** Turns generated ids into text incrementally. */
public interface StreamingDecoder {

    /**
     * Adds one id.
     *
     * @param id the token id
     * @return the text that became complete (possibly empty)
     */
    String next(int id);

    /**
     * Returns what is left at the end of the stream.
     *
     * @return the remaining text (possibly empty)
     */
    String flush();
}
