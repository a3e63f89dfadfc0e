package org.flashdjl.examples.serving;

import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One parsed and checked generation request of the serving handler. Every client mistake is a {@link
 * BadRequestException} (answered 400) naming the field, the value and what is allowed.
 *
 * <p>Two forms, never mixed:
 * <ul>
 *   <li>flat: {@code {"prompt": "Hello", "max_new_tokens": 32, "temperature": 0, "top_k": 0, "top_p": 1,
 *       "seed": 42, "stream": false}};
 *   <li>LMI: {@code {"inputs": "Hello", "parameters": {"max_new_tokens": 32, "do_sample": true, ...},
 *       "stream": false}}.
 * </ul>
 * With a {@code "parameters"} object, generation settings go inside it: a top-level one beside it is ambiguous and
 * refused (it is not silently ignored, nor silently preferred). {@code "prompt"} and {@code "inputs"} are the same
 * field: give one. {@code "stream"} is top-level. Unknown fields are refused (a misspelled setting must not be
 * silently dropped).
 *
 * <p>Ranges: {@code max_new_tokens} integer in [1, the directory's max_new_tokens] (default min(32, limit));
 * {@code temperature} in [0, 100] (0 = greedy; default 0, or 1 with {@code "do_sample": true}); {@code top_k}
 * integer {@code >= 0} (0 = off); {@code top_p} in [1e-6, 1]; {@code seed} integer with |seed| {@code <= 2^53};
 * {@code do_sample}, {@code stream} booleans.
 */
public final class ServingRequest {

    /** The largest temperature accepted (beyond it sampling is uniform in all but name). */
    public static final double MAX_TEMPERATURE = 100;
    /** The smallest top_p accepted (smaller values are greedy in all but name and underflow fp32). */
    public static final double MIN_TOP_P = 1e-6;

    private static final List<String> GENERATION_KEYS = Arrays.asList("max_new_tokens", "temperature", "top_k",
            "top_p", "seed", "do_sample");
    private static final List<String> TOP_LEVEL_KEYS = Arrays.asList("prompt", "inputs", "parameters", "stream");

    private final int[] promptIds;
    private final GenerationConfig config;
    private final boolean stream;

    private ServingRequest(int[] promptIds, GenerationConfig config, boolean stream) {
        this.promptIds = promptIds;
        this.config = config;
        this.stream = stream;
    }

    /** @return the prompt ids, BOS first when the tokenizer has one */
    public int[] getPromptIds() {
        return promptIds.clone();
    }

    /** @return what to generate */
    public GenerationConfig getConfig() {
        return config;
    }

    /** @return whether tokens are streamed as they come */
    public boolean isStream() {
        return stream;
    }

    /** A request the client got wrong: answered 400 with this message. */
    public static final class BadRequestException extends Exception {
        private static final long serialVersionUID = 1L;

        /**
         * Creates the exception (no stack trace: it is a message for the client).
         *
         * @param message what is wrong and what is allowed
         */
        public BadRequestException(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Parses and checks a request body.
     *
     * @param body the request body (JSON)
     * @param tokenizer the model's tokenizer
     * @param limits the directory's limits
     * @return the request
     * @throws BadRequestException on any client mistake
     */
    public static ServingRequest parse(String body, TextTokenizer tokenizer, ServingConfig limits)
            throws BadRequestException {
        if (body == null || body.trim().isEmpty()) {
            throw new BadRequestException("empty request body; send JSON like {\"prompt\": \"Hello\","
                    + " \"max_new_tokens\": 16}");
        }
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(body);
            if (!e.isJsonObject()) {
                throw new BadRequestException("request body must be a JSON object, got " + abbreviate(body));
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new BadRequestException("request body is not valid JSON: " + abbreviate(body));
        }
        JsonObject p = o;
        if (o.has("parameters")) {
            if (!o.get("parameters").isJsonObject()) {
                throw new BadRequestException("\"parameters\" must be an object, got "
                        + abbreviate(o.get("parameters").toString()));
            }
            p = o.getAsJsonObject("parameters");
            for (String k : GENERATION_KEYS) {
                if (o.has(k)) {
                    throw new BadRequestException("\"" + k + "\" is given at the top level beside a \"parameters\""
                            + " object; put every generation setting inside \"parameters\" (or drop"
                            + " \"parameters\" and give them all at the top level)");
                }
            }
            for (Map.Entry<String, JsonElement> e : p.entrySet()) {
                if (!GENERATION_KEYS.contains(e.getKey())) {
                    throw new BadRequestException("unknown field \"parameters." + e.getKey() + "\"; accepted: "
                            + String.join(", ", GENERATION_KEYS)
                            + (e.getKey().equals("stream") ? " (\"stream\" goes at the top level)" : ""));
                }
            }
        }
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            if (!TOP_LEVEL_KEYS.contains(e.getKey()) && !(p == o && GENERATION_KEYS.contains(e.getKey()))) {
                throw new BadRequestException("unknown field \"" + e.getKey() + "\"; accepted: "
                        + String.join(", ", TOP_LEVEL_KEYS) + ", " + String.join(", ", GENERATION_KEYS));
            }
        }
        if (o.has("prompt") && o.has("inputs")) {
            throw new BadRequestException("give the text as \"prompt\" or as \"inputs\", not both");
        }
        String prompt = o.has("prompt") ? string(o, "prompt") : o.has("inputs") ? string(o, "inputs") : null;
        if (prompt == null) {
            throw new BadRequestException("missing \"prompt\" (a string)");
        }
        boolean stream = bool(o, "stream", false);
        int limit = limits.getMaxNewTokens();
        double maxNew = number(p, "max_new_tokens", Math.min(32, limit));
        String shown = p.has("max_new_tokens") ? abbreviate(p.get("max_new_tokens").toString())
                : String.valueOf((long) maxNew);
        if (maxNew != Math.rint(maxNew)) {
            throw new BadRequestException("\"max_new_tokens\" must be an integer, got " + shown);
        }
        if (maxNew < 1) {
            throw new BadRequestException("max_new_tokens must be >= 1, got " + shown);
        }
        if (maxNew > limit) {
            throw new BadRequestException("max_new_tokens " + shown + " exceeds this model's limit of " + limit);
        }
        boolean doSample = bool(p, "do_sample", false);
        double temperature = number(p, "temperature", doSample ? 1.0 : 0.0);
        if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
            throw new BadRequestException("temperature must be in [0, " + (int) MAX_TEMPERATURE
                    + "] (0 = greedy), got " + temperature);
        }
        if (doSample && temperature == 0) {
            throw new BadRequestException("do_sample is true but temperature is 0 (greedy); give a temperature > 0"
                    + " or drop do_sample");
        }
        long topK = integer(p, "top_k", 0, Integer.MAX_VALUE);
        if (topK < 0) {
            throw new BadRequestException("top_k must be >= 0 (0 = off), got " + topK);
        }
        double topP = number(p, "top_p", 1.0);
        if (!(topP >= MIN_TOP_P && topP <= 1)) {
            throw new BadRequestException(String.format(Locale.ROOT, "top_p must be in [%s, 1] (1 = off), got %s",
                    MIN_TOP_P, topP));
        }
        long seed = integer(p, "seed", 42, 1L << 53);
        GenerationConfig config = GenerationConfig.builder().optMaxNewTokens((int) maxNew)
                .optTemperature((float) temperature).optTopK((int) topK).optTopP((float) topP).optSeed(seed).build();
        int[] ids = tokenizer.encode(prompt);
        int bos = tokenizer.getBosId();
        int[] withBos = ids;
        if (bos >= 0) {
            withBos = new int[ids.length + 1];
            withBos[0] = bos;
            System.arraycopy(ids, 0, withBos, 1, ids.length);
        }
        if (withBos.length == 0) {
            throw new BadRequestException("the prompt is empty and this tokenizer has no BOS token: nothing to"
                    + " condition on");
        }
        if (withBos.length > limits.getMaxPromptTokens()) {
            throw new BadRequestException("prompt is " + withBos.length + " tokens; this model accepts at most "
                    + limits.getMaxPromptTokens());
        }
        return new ServingRequest(withBos, config, stream);
    }

    private static String string(JsonObject o, String key) throws BadRequestException {
        JsonElement e = o.get(key);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new BadRequestException("\"" + key + "\" must be a string, got " + abbreviate(e.toString()));
        }
        return e.getAsString();
    }

    private static boolean bool(JsonObject o, String key, boolean def) throws BadRequestException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new BadRequestException("\"" + key + "\" must be true or false, got " + abbreviate(e.toString()));
        }
        return e.getAsBoolean();
    }

    private static double number(JsonObject o, String key, double def) throws BadRequestException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        if (!e.isJsonPrimitive() || !((JsonPrimitive) e).isNumber()) {
            throw new BadRequestException("\"" + key + "\" must be a number, got " + abbreviate(e.toString()));
        }
        double v = e.getAsDouble();
        if (!Double.isFinite(v)) {
            throw new BadRequestException("\"" + key + "\" must be a finite number, got " + abbreviate(e.toString()));
        }
        return v;
    }

    private static long integer(JsonObject o, String key, long def, long maxAbs) throws BadRequestException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return def;
        }
        double v = number(o, key, def);
        if (v != Math.rint(v)) {
            throw new BadRequestException("\"" + key + "\" must be an integer, got " + abbreviate(e.toString()));
        }
        if (Math.abs(v) > maxAbs || Math.abs(v) > 1L << 53) {
            throw new BadRequestException("\"" + key + "\" is out of range: |" + key + "| must be <= "
                    + Math.min(maxAbs, 1L << 53) + ", got " + abbreviate(e.toString()));
        }
        return (long) v;
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
