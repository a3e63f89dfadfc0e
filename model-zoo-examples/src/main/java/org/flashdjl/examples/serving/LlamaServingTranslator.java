package org.flashdjl.examples.serving;

import ai.djl.Model;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.NDList;
import ai.djl.translate.Batchifier;
import ai.djl.translate.ServingTranslator;
import ai.djl.translate.TranslatorContext;

import org.flashdjl.examples.generate.GenerationHandle;
import org.flashdjl.examples.generate.GenerationRejectedException;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.RollingBatchScheduler;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;

/**
 * The DJL Serving handler of a FlashDJL model directory ({@code translator=} in {@code serving.properties}; DJL
 * finds it in the directory's {@code libs/}). JSON in, JSON out; every request, from any worker thread, joins the
 * model's one rolling batch ({@link RollingBatchScheduler}, one per model and device).
 *
 * <p>Request: see {@link ServingRequest} ({@code {"prompt": "Hello", "max_new_tokens": 32, "stream": false, ...}}
 * or {@code {"inputs": ..., "parameters": {...}}}). Answers:
 * <ul>
 *   <li>200 {@code application/json}: {@code {"generated_text", "token_ids", "finish_reason" ("eos" | "length"),
 *       "prompt_tokens", "generated_tokens"}};
 *   <li>200 streamed ({@code "stream": true}), {@code application/jsonlines}: a {@link TokenStream}, one line per
 *       token and a final line with {@code finish_reason} and the counts;
 *   <li>400 {@code {"error", "code": 400}}: a client mistake ({@link ServingRequest.BadRequestException});
 *   <li>503: no room in the batch within {@code admission_timeout_ms}, or {@code request_timeout_ms} ran out (the
 *       request is cancelled, its KV pages freed);
 *   <li>500: the model failed to load or to run (the message, never a stack trace).
 * </ul>
 *
 * <p>DJL's flow: {@code setArguments} reads and checks the directory's keys ({@link ServingConfig}; a bad value
 * fails the model load), {@code prepare} loads the weights once under the DJL model's manager (the first request
 * pays for it), {@code processInput} parses the request (the model's block, DJL's identity block, is not run), and
 * {@code processOutput} submits it to the rolling batch.
 */
public final class LlamaServingTranslator implements ServingTranslator {

    private static final Logger logger = LoggerFactory.getLogger(LlamaServingTranslator.class);

    private static final String REQUEST = "flashdjl.request";
    private static final String ERROR = "flashdjl.error";

    private ServingConfig config = ServingConfig.builder().build();
    private volatile ServedModel served;
    private volatile String loadFailure;

    /** {@inheritDoc} */
    @Override
    public void setArguments(Map<String, ?> arguments) {
        config = ServingConfig.fromArguments(arguments);
    }

    /** @return the directory's serving keys */
    public ServingConfig getConfig() {
        return config;
    }

    /**
     * Returns the rolling batch's live counters.
     *
     * @return the counters, or null before the model has loaded
     */
    public RollingBatchScheduler.Stats getStats() {
        ServedModel s = served;
        return s == null ? null : s.scheduler().getStats();
    }

    /** {@inheritDoc} */
    @Override
    public void prepare(TranslatorContext ctx) {
        if (served != null || loadFailure != null) {
            return;
        }
        synchronized (this) {
            if (served != null || loadFailure != null) {
                return;
            }
            Model model = ctx.getModel();
            Path dir = model.getModelPath();
            // Our jars come from the directory's libs/ through a class loader of their own: the backends'
            // ServiceLoader lookups must see them.
            Thread t = Thread.currentThread();
            ClassLoader previous = t.getContextClassLoader();
            t.setContextClassLoader(LlamaServingTranslator.class.getClassLoader());
            try {
                served = ServedModel.load(dir, model.getNDManager(), config);
                logger.info("FlashDJL model {} loaded on {}: {}", dir, model.getNDManager().getDevice(), config);
            } catch (Exception | OutOfMemoryError e) {
                loadFailure = "the model in " + dir + " failed to load: " + message(e);
                logger.error(loadFailure);
                logger.debug("load failure", e);
            } finally {
                t.setContextClassLoader(previous);
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public Batchifier getBatchifier() {
        return null; // requests are batched by the rolling batch, not by DJL
    }

    /** {@inheritDoc} */
    @Override
    public NDList processInput(TranslatorContext ctx, Input input) {
        ServedModel s = served;
        if (s == null) {
            ctx.setAttachment(ERROR, error(500, loadFailure == null ? "the model is not loaded" : loadFailure));
            return new NDList();
        }
        try {
            String body;
            try {
                body = input.getData() == null ? null : input.getData().getAsString();
            } catch (RuntimeException e) {
                throw new ServingRequest.BadRequestException("request body is not readable text");
            }
            ctx.setAttachment(REQUEST, ServingRequest.parse(body, s.tokenizer(), config));
        } catch (ServingRequest.BadRequestException e) {
            ctx.setAttachment(ERROR, error(400, e.getMessage()));
        }
        return new NDList(); // nothing for DJL's block: the rolling batch runs the model
    }

    /** {@inheritDoc} */
    @Override
    public Output processOutput(TranslatorContext ctx, NDList list) {
        Object error = ctx.getAttachment(ERROR);
        if (error != null) {
            return (Output) error;
        }
        ServingRequest req = (ServingRequest) ctx.getAttachment(REQUEST);
        RollingBatchScheduler scheduler = served.scheduler();
        int[] prompt = req.getPromptIds();
        TokenStream stream = req.isStream() ? new TokenStream(prompt.length) : null;
        GenerationHandle h;
        try {
            h = scheduler.submit(prompt, req.getConfig(), stream, config.getRequestTimeoutMillis());
        } catch (GenerationRejectedException e) {
            return error(503, e.getMessage());
        } catch (IllegalArgumentException e) {
            return error(500, "the request cannot run on this model: " + e.getMessage());
        }
        try {
            if (stream != null) {
                stream.bind(h);
                h.awaitAdmission();
                Output out = new Output(200, "OK");
                out.addProperty("Content-Type", "application/jsonlines");
                out.add(stream);
                return out;
            }
            return answer(req, h.await());
        } catch (InterruptedException e) {
            h.cancel();
            Thread.currentThread().interrupt();
            return error(503, "interrupted while generating; the request was cancelled and its KV pages freed");
        } catch (GenerationRejectedException e) {
            return error(503, e.getMessage());
        } catch (RuntimeException e) {
            logger.error("generation failed", e);
            return error(500, message(e));
        }
    }

    private Output answer(ServingRequest req, GenerationResult r) {
        int[] tokens = r.getTokenIds();
        switch (r.getFinishReason()) {
            case TIMEOUT:
                return error(503, String.format(Locale.ROOT, "request_timeout_ms %d ran out after %d of %d new"
                        + " tokens; the request was cancelled and its KV pages freed",
                        config.getRequestTimeoutMillis(), tokens.length, req.getConfig().getMaxNewTokens()));
            case CANCELLED:
                return error(503, "the request was cancelled (the model is shutting down) after " + tokens.length
                        + " tokens");
            default:
                break;
        }
        JsonArray arr = new JsonArray();
        for (int t : tokens) {
            arr.add(t);
        }
        JsonObject o = new JsonObject();
        o.addProperty("generated_text", r.getText());
        o.add("token_ids", arr);
        o.addProperty("finish_reason", r.getFinishReason().name().toLowerCase(Locale.ROOT));
        o.addProperty("prompt_tokens", r.getPromptIds().length);
        o.addProperty("generated_tokens", tokens.length);
        Output out = new Output(200, "OK");
        out.addProperty("Content-Type", "application/json");
        out.add(o.toString());
        return out;
    }

    private static Output error(int code, String message) {
        JsonObject o = new JsonObject();
        o.addProperty("error", message);
        o.addProperty("code", code);
        String reason = code == 400 ? "Bad Request" : code == 503 ? "Service Unavailable" : "Internal Server Error";
        Output out = new Output(code, reason);
        out.addProperty("Content-Type", "application/json");
        out.add(o.toString());
        return out;
    }

    /**
     * Returns a failure's message for a client: the message chain, no stack trace.
     *
     * @param t the failure
     * @return the message
     */
    static String message(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null && sb.length() < 500; c = c.getCause() == c ? null : c.getCause()) {
            String m = c.getMessage();
            String part = m == null || m.isEmpty() ? c.getClass().getSimpleName() : m;
            if (sb.indexOf(part) < 0) {
                sb.append(sb.length() == 0 ? "" : ": ").append(part);
            }
        }
        return sb.toString();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LlamaServingTranslator" + Arrays.asList(config);
    }
}
