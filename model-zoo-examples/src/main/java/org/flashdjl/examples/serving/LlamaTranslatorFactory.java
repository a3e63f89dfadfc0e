package org.flashdjl.examples.serving;

import ai.djl.Model;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.translate.TranslateException;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorFactory;
import ai.djl.util.Pair;

import java.lang.reflect.Type;
import java.util.Collections;
import java.util.Map;
import java.util.Set;

/**
 * Makes the {@link LlamaServingTranslator} for {@code (Input, Output)}; named in {@code serving.properties} as
 * {@code translatorFactory=org.flashdjl.examples.serving.LlamaTranslatorFactory}. Arguments: {@code
 * max_prompt_tokens} (default 512) and {@code max_new_tokens} (default 128), the limits past which requests get
 * a 400 answer.
 */
public final class LlamaTranslatorFactory implements TranslatorFactory {

    /** {@inheritDoc} */
    @Override
    public Set<Pair<Type, Type>> getSupportedTypes() {
        return Collections.singleton(new Pair<>(Input.class, Output.class));
    }

    /** {@inheritDoc} */
    @Override
    @SuppressWarnings("unchecked")
    public <I, O> Translator<I, O> newInstance(Class<I> input, Class<O> output, Model model,
            Map<String, ?> arguments) throws TranslateException {
        if (!isSupported(input, output)) {
            throw new IllegalArgumentException("LlamaTranslatorFactory serves (Input, Output), not (" + input + ", "
                    + output + ")");
        }
        LlamaServingTranslator t = new LlamaServingTranslator();
        t.setArguments(arguments);
        return (Translator<I, O>) t;
    }

    static String stringArg(Map<String, ?> args, String key, String def) {
        Object v = args == null ? null : args.get(key);
        return v == null ? def : v.toString().trim();
    }

    static int intArg(Map<String, ?> args, String key, int def) {
        String v = stringArg(args, key, null);
        if (v == null || v.isEmpty()) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("serving.properties: " + key + " must be an integer, got '" + v + "'");
        }
    }
}
