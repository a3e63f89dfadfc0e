package org.flashdjl.examples.llama;

import org.flashdjl.examples.safetensors.CheckpointException;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.TreeSet;

/**
 * Typed reads of one JSON object of {@code config.json} (the top level or a nested object such as
 * {@code rope_parameters}), every error a {@link CheckpointException} naming the file and the dotted key, every read
 * key remembered so the caller can tell which keys it did not read.
 */
final class ConfigReader {

    private final Path file;
    private final JsonObject object;
    private final String prefix;
    private final Set<String> read = new LinkedHashSet<>();

    ConfigReader(Path file, JsonObject object, String prefix) {
        this.file = file;
        this.object = object;
        this.prefix = prefix;
    }

    Path file() {
        return file;
    }

    /** The dotted name of a key of this object, as error messages show it. */
    String path(String key) {
        return prefix.isEmpty() ? key : prefix + "." + key;
    }

    CheckpointException error(String key, String message) {
        return CheckpointException.forKey(file, path(key), message);
    }

    /** Whether the key is present with a non-null value (marks it read). */
    boolean has(String key) {
        read.add(key);
        JsonElement e = object.get(key);
        return e != null && !e.isJsonNull();
    }

    /** Whether the key is present at all, null included (does not mark it read). */
    boolean present(String key) {
        return object.has(key);
    }

    JsonElement raw(String key) {
        read.add(key);
        return object.get(key);
    }

    /** The keys of this object that were never read, sorted. */
    Set<String> unread() {
        Set<String> s = new TreeSet<>(object.keySet());
        s.removeAll(read);
        return s;
    }

    Set<String> keys() {
        return object.keySet();
    }

    String string(String key, String def) throws CheckpointException {
        if (!has(key)) {
            return def;
        }
        JsonElement e = object.get(key);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw error(key, "must be a string, got " + e);
        }
        return e.getAsString();
    }

    String requiredString(String key) throws CheckpointException {
        if (!has(key)) {
            throw error(key, "required key is missing");
        }
        return string(key, null);
    }

    /** An integer in [min, max]; {@code def} when absent or null. */
    int integer(String key, int def, long min, long max) throws CheckpointException {
        if (!has(key)) {
            return def;
        }
        return toInt(key, object.get(key), min, max);
    }

    int requiredInteger(String key, long min, long max) throws CheckpointException {
        if (!has(key)) {
            throw error(key, "required key is missing");
        }
        return toInt(key, object.get(key), min, max);
    }

    int toInt(String key, JsonElement e, long min, long max) throws CheckpointException {
        BigDecimal v = number(key, e, "an integer");
        BigDecimal whole;
        try {
            whole = v.stripTrailingZeros();
        } catch (ArithmeticException ex) {
            throw error(key, "must be an integer, got " + e);
        }
        if (whole.scale() > 0) {
            throw error(key, "must be an integer, got " + e);
        }
        if (whole.compareTo(BigDecimal.valueOf(min)) < 0 || whole.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw error(key, "must be an integer in [" + min + ", " + max + "], got " + e);
        }
        return whole.intValueExact();
    }

    /** A finite number {@code > 0}; {@code def} when absent or null. */
    double positive(String key, double def) throws CheckpointException {
        if (!has(key)) {
            return def;
        }
        double d = number(key, object.get(key), "a number").doubleValue();
        if (!(d > 0) || Double.isInfinite(d)) {
            throw error(key, "must be a finite number > 0, got " + object.get(key));
        }
        return d;
    }

    /** A finite number; {@code def} when absent or null. */
    double finite(String key, double def) throws CheckpointException {
        if (!has(key)) {
            return def;
        }
        double d = number(key, object.get(key), "a number").doubleValue();
        if (Double.isInfinite(d)) {
            throw error(key, "must be a finite number, got " + object.get(key));
        }
        return d;
    }

    double requiredPositive(String key) throws CheckpointException {
        if (!has(key)) {
            throw error(key, "required key is missing");
        }
        return positive(key, 0);
    }

    boolean bool(String key, boolean def) throws CheckpointException {
        if (!has(key)) {
            return def;
        }
        JsonElement e = object.get(key);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw error(key, "must be true or false, got " + e);
        }
        return e.getAsBoolean();
    }

    /** A nested object, or null when absent, null or empty. */
    ConfigReader object(String key) throws CheckpointException {
        if (!has(key)) {
            return null;
        }
        JsonElement e = object.get(key);
        if (!e.isJsonObject()) {
            throw error(key, "must be an object or null, got " + e);
        }
        return e.getAsJsonObject().size() == 0 ? null : new ConfigReader(file, e.getAsJsonObject(), path(key));
    }

    private BigDecimal number(String key, JsonElement e, String what) throws CheckpointException {
        if (!e.isJsonPrimitive() || !((JsonPrimitive) e).isNumber()) {
            throw error(key, "must be " + what + ", got " + e);
        }
        try {
            return new BigDecimal(e.getAsString());
        } catch (NumberFormatException ex) {
            throw error(key, "must be " + what + ", got " + e); // NaN, Infinity (lenient JSON)
        }
    }
}
