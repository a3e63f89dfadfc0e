package org.flashdjl.examples.generate;

/** Receives tokens as they are generated (streaming). */
@FunctionalInterface
public interface GenerationListener {

    /**
     * Called once per generated token, in order, on the generating thread.
     *
     * @param event the token
     */
    void onToken(TokenEvent event);
}
