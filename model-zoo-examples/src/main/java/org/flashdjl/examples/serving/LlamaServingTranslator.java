package org.flashdjl.examples.serving;

import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.translate.Batchifier;
import ai.djl.translate.ServingTranslator;
import ai.djl.translate.TranslatorContext;

import org.flashdjl.examples.tokenizer.TextTokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import java.util.Map;

/**
 * JSON in, JSON out, for a served {@link GenerateBlock}.
 *
 * <p>Request: {@code {"prompt": "...", "max_new_tokens": 32, "temperature": 0, "top_k": 0, "top_p": 1,
 * "seed": 42}}; also DJL Serving's LMI form {@code {"inputs": "...", "parameters": {...}}}. Only the prompt is
 * required. Response (200): {@code {"generated_text", "token_ids", "finish_reason" ("length" | "eos"),
 * "prompt_tokens", "generated_tokens"}}. A client error (bad JSON, missing or mistyped field, prompt longer than
 * {@code max_prompt_tokens}, {@code max_new_tokens} above the limit, bad sampling values) answers code 400 with
 * {@code {"error": message, "code": 400}}; no stack trace reaches the client.
 */
public final class LlamaServingTranslator implements ServingTranslator {

    private static final String ERROR = "flashdjl.error";
    private static final String PROMPT_TOKENS = "flashdjl.promptTokens";

    private int maxPromptTokens = 512;
    private int maxNewTokensLimit = 128;
    private TextTokenizer tokenizer;

    /** {@inheritDoc} */
    @Override
    public void setArguments(Map<String, ?> arguments) {
        maxPromptTokens = LlamaTranslatorFactory.intArg(arguments, "max_prompt_tokens", maxPromptTokens);
        maxNewTokensLimit = LlamaTranslatorFactory.intArg(arguments, "max_new_tokens", maxNewTokensLimit);
        if (maxPromptTokens < 1 || maxNewTokensLimit < 1) {
            throw new IllegalArgumentException("max_prompt_tokens and max_new_tokens must be >= 1");
        }
    }

    /** @return the longest prompt accepted, in tokens */
    public int getMaxPromptTokens() {
        return maxPromptTokens;
    }

    /** @return the largest max_new_tokens accepted */
    public int getMaxNewTokensLimit() {
        return maxNewTokensLimit;
    }

    /** {@inheritDoc} */
    @Override
    public void prepare(TranslatorContext ctx) {
        if (!(ctx.getBlock() instanceof GenerateBlock)) {
            throw new IllegalStateException("the model's block is " + ctx.getBlock().getClass().getName()
                    + "; serving.properties must name blockFactory=" + LlamaBlockFactory.class.getName());
        }
        tokenizer = ((GenerateBlock) ctx.getBlock()).getTokenizer();
    }

    /** {@inheritDoc} */
    @Override
    public Batchifier getBatchifier() {
        return null; // one request per forward: generation lengths differ
    }

    /** {@inheritDoc} */
    @Override
    public NDList processInput(TranslatorContext ctx, Input input) {
        NDManager m = ctx.getNDManager();
        Request req;
        try {
            req = parse(input);
        } catch (ClientError e) {
            ctx.setAttachment(ERROR, e.getMessage());
            return new NDList(m.create(new long[0]), m.create(new double[5]));
        }
        ctx.setAttachment(PROMPT_TOKENS, req.promptIds.length);
        long[] ids = new long[req.promptIds.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = req.promptIds[i];
        }
        double[] sampling = {req.maxNewTokens, req.temperature, req.topK, req.topP, req.seed};
        return new NDList(m.create(ids), m.create(sampling));
    }

    /** {@inheritDoc} */
    @Override
    public Output processOutput(TranslatorContext ctx, NDList list) {
        Object error = ctx.getAttachment(ERROR);
        if (error != null) {
            return error(error.toString());
        }
        long[] ids = list.get(0).toType(DataType.INT64, false).toLongArray();
        int reason = list.get(1).toIntArray()[0];
        int[] tokens = new int[ids.length];
        JsonArray arr = new JsonArray();
        for (int i = 0; i < ids.length; i++) {
            tokens[i] = (int) ids[i];
            arr.add(ids[i]);
        }
        int[] textIds = reason == 1 && tokens.length > 0 ? java.util.Arrays.copyOf(tokens, tokens.length - 1) : tokens;
        JsonObject o = new JsonObject();
        o.addProperty("generated_text", tokenizer.decode(textIds));
        o.add("token_ids", arr);
        o.addProperty("finish_reason", reason == 1 ? "eos" : "length");
        o.addProperty("prompt_tokens", (Integer) ctx.getAttachment(PROMPT_TOKENS));
        o.addProperty("generated_tokens", tokens.length);
        Output out = new Output(200, "OK");
        out.addProperty("Content-Type", "application/json");
        out.add(o.toString());
        return out;
    }

    private static Output error(String message) {
        JsonObject o = new JsonObject();
        o.addProperty("error", message);
        o.addProperty("code", 400);
        Output out = new Output(400, "Bad Request");
        out.addProperty("Content-Type", "application/json");
        out.add(o.toString());
        return out;
    }

    /** A request the client got wrong. */
    private static final class ClientError extends Exception {
        private static final long serialVersionUID = 1L;

        ClientError(String message) {
            super(message, null, false, false);
        }
    }

    private static final class Request {
        int[] promptIds;
        int maxNewTokens;
        double temperature;
        int topK;
        double topP = 1;
        long seed = 42;
    }

    private Request parse(Input input) throws ClientError {
        String body;
        try {
            body = input.getData() == null ? null : input.getData().getAsString();
        } catch (RuntimeException e) {
            throw new ClientError("request body is not readable text");
        }
        if (body == null || body.trim().isEmpty()) {
            throw new ClientError("empty request body; send JSON like {\"prompt\": \"Hello\", \"max_new_tokens\": 16}");
        }
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(body);
            if (!e.isJsonObject()) {
                throw new ClientError("request body must be a JSON object, got " + abbreviate(body));
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new ClientError("request body is not valid JSON: " + abbreviate(body));
        }
        JsonObject p = o;
        if (o.has("parameters")) {
            if (!o.get("parameters").isJsonObject()) {
                throw new ClientError("\"parameters\" must be an object");
            }
            p = o.getAsJsonObject("parameters");
        }
        String prompt = o.has("prompt") ? string(o, "prompt") : o.has("inputs") ? string(o, "inputs") : null;
        if (prompt == null) {
            throw new ClientError("missing \"prompt\" (a string)");
        }
        Request r = new Request();
        r.maxNewTokens = (int) number(p, "max_new_tokens", Math.min(32, maxNewTokensLimit), true);
        if (r.maxNewTokens < 1) {
            throw new ClientError("max_new_tokens must be >= 1, got " + r.maxNewTokens);
        }
        if (r.maxNewTokens > maxNewTokensLimit) {
            throw new ClientError("max_new_tokens " + r.maxNewTokens + " exceeds this model's limit of "
                    + maxNewTokensLimit);
        }
        boolean doSample = p.has("do_sample") && p.get("do_sample").isJsonPrimitive()
                && p.get("do_sample").getAsJsonPrimitive().isBoolean() && p.get("do_sample").getAsBoolean();
        r.temperature = number(p, "temperature", doSample ? 1.0 : 0.0, false);
        if (!(r.temperature >= 0) || Double.isInfinite(r.temperature)) {
            throw new ClientError("temperature must be a finite number >= 0, got " + r.temperature);
        }
        r.topK = (int) number(p, "top_k", 0, true);
        if (r.topK < 0) {
            throw new ClientError("top_k must be >= 0, got " + r.topK);
        }
        r.topP = number(p, "top_p", 1.0, false);
        if (!(r.topP > 0 && r.topP <= 1)) {
            throw new ClientError("top_p must be in (0, 1], got " + r.topP);
        }
        r.seed = (long) number(p, "seed", 42, true);
        int[] ids = tokenizer.encode(prompt);
        int bos = tokenizer.getBosId();
        int[] withBos = ids;
        if (bos >= 0) {
            withBos = new int[ids.length + 1];
            withBos[0] = bos;
            System.arraycopy(ids, 0, withBos, 1, ids.length);
        }
        if (withBos.length > maxPromptTokens) {
            throw new ClientError("prompt is " + withBos.length + " tokens; this model accepts at most "
                    + maxPromptTokens);
        }
        r.promptIds = withBos;
        return r;
    }

    private static String string(JsonObject o, String key) throws ClientError {
        JsonElement e = o.get(key);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new ClientError("\"" + key + "\" must be a string, got " + abbreviate(e.toString()));
        }
        return e.getAsString();
    }

    private static double number(JsonObject o, String key, double def, boolean integer) throws ClientError {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        if (!e.isJsonPrimitive() || !((JsonPrimitive) e).isNumber()) {
            throw new ClientError("\"" + key + "\" must be a number, got " + abbreviate(e.toString()));
        }
        double v = e.getAsDouble();
        if (integer && (v != Math.rint(v) || Math.abs(v) > 1e15)) {
            throw new ClientError("\"" + key + "\" must be an integer, got " + e);
        }
        return v;
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
