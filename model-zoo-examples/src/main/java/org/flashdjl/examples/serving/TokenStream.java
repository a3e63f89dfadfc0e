package org.flashdjl.examples.serving;

import ai.djl.inference.streaming.ChunkedBytesSupplier;

import org.flashdjl.examples.generate.GenerationHandle;
import org.flashdjl.examples.generate.GenerationListener;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.TokenEvent;

import com.google.gson.JsonObject;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The body of a streamed answer: DJL's {@link ChunkedBytesSupplier} (what DJL Serving streams to the client chunk
 * by chunk), filled with one JSON line per generated token as the rolling batch produces it, then a final line:
 *
 * <pre>
 * {"index":1,"token_id":72,"text":"H"}
 * {"index":2,"token_id":105,"text":"i"}
 * {"text":"","finish_reason":"length","prompt_tokens":6,"generated_tokens":2,"generated_text":"Hi"}
 * </pre>
 *
 * The {@code text} fields concatenated are {@code generated_text} (a multi-byte character is sent once complete;
 * the final line carries what remained). {@code finish_reason} is {@code eos}, {@code length}, {@code timeout},
 * {@code cancelled} or {@code error} (then with {@code "error"}: the message). {@link #cancel} stops the
 * generation and frees its KV pages.
 */
public final class TokenStream extends ChunkedBytesSupplier implements GenerationListener {

    private final int promptTokens;
    private volatile GenerationHandle handle;
    private int streamedChars; // guarded by this

    /**
     * Creates an empty stream.
     *
     * @param promptTokens the prompt's length, for the final line
     */
    TokenStream(int promptTokens) {
        this.promptTokens = promptTokens;
    }

    /**
     * Binds the stream to its request: the final line is written when it ends.
     *
     * @param h the request
     */
    void bind(GenerationHandle h) {
        this.handle = h;
        h.whenDone(this::finish);
    }

    /**
     * Stops the generation (at the next step boundary, its KV pages freed); the stream ends with {@code
     * "finish_reason": "cancelled"}.
     *
     * @return true if it was still running
     */
    public boolean cancel() {
        GenerationHandle h = handle;
        return h != null && h.cancel();
    }

    /** {@inheritDoc} */
    @Override
    public void onToken(TokenEvent e) {
        JsonObject o = new JsonObject();
        o.addProperty("index", e.getIndex());
        o.addProperty("token_id", e.getTokenId());
        o.addProperty("text", e.getText());
        line(o, false);
    }

    private void finish(GenerationResult r, Throwable failure) {
        JsonObject o = new JsonObject();
        if (failure != null) {
            o.addProperty("finish_reason", "error");
            o.addProperty("error", LlamaServingTranslator.message(failure));
            o.addProperty("prompt_tokens", promptTokens);
        } else {
            String text = r.getText();
            o.addProperty("text", text.substring(Math.min(text.length(), streamedChars)));
            o.addProperty("finish_reason", r.getFinishReason().name().toLowerCase(Locale.ROOT));
            o.addProperty("prompt_tokens", promptTokens);
            o.addProperty("generated_tokens", r.getTokenIds().length);
            o.addProperty("generated_text", text);
        }
        line(o, true);
    }

    private synchronized void line(JsonObject o, boolean last) {
        if (o.has("index")) {
            streamedChars += o.get("text").getAsString().length();
        }
        appendContent((o + "\n").getBytes(StandardCharsets.UTF_8), false);
        if (last) {
            // DJL's appendContent(data, true) marks the end before it queues the data, so a reader polling
            // hasNext() in between would drop the final line: queue it first, then end with an empty chunk.
            appendContent(new byte[0], true);
        }
    }
}
