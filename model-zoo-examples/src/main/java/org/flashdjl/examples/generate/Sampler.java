package org.flashdjl.examples.generate;

import ai.djl.ndarray.NDArray;

import java.util.Arrays;
import java.util.Random;

/** Picks the next token from a logits row: argmax, or seeded sampling with temperature, top-k and top-p. */
public final class Sampler {

    private final GenerationConfig config;
    private final Random random;

    /**
     * Creates a sampler (one per sequence: it owns the random stream).
     *
     * @param config the sampling rule and seed
     */
    public Sampler(GenerationConfig config) {
        this.config = config;
        this.random = new Random(config.getSeed());
    }

    /**
     * Picks a token.
     *
     * @param logits one row of logits [vocab]
     * @return the token id
     */
    public int next(float[] logits) {
        if (config.isGreedy()) {
            return argmax(logits);
        }
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = config.getTopK() > 0 ? Math.min(config.getTopK(), n) : n;
        double max = logits[order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp((logits[order[i]] - max) / config.getTemperature());
            sum += p[i];
        }
        double cum = 0;
        int cut = keep;
        for (int i = 0; i < keep; i++) {
            p[i] /= sum;
            cum += p[i];
            if (cum >= config.getTopP()) {
                cut = i + 1;
                break;
            }
        }
        double total = 0;
        for (int i = 0; i < cut; i++) {
            total += p[i];
        }
        double r = random.nextDouble() * total;
        for (int i = 0; i < cut; i++) {
            r -= p[i];
            if (r <= 0) {
                return order[i];
            }
        }
        return order[cut - 1];
    }

    /** @return whether this sampler picks the argmax (temperature 0) */
    public boolean isGreedy() {
        return config.isGreedy();
    }

    /**
     * Picks a token from a logits row on any device: greedy picks on the row's device and copies one index back;
     * sampling copies the row to the host.
     *
     * @param logits one row of logits [vocab]
     * @return the token id
     */
    public int next(NDArray logits) {
        if (config.isGreedy()) {
            return (int) logits.argMax().getLong(); // the first of equal maxima, as argmax(float[])
        }
        return next(logits.toFloatArray());
    }

    /**
     * Returns the index of the largest value (the smallest index on ties).
     *
     * @param x the values
     * @return the argmax
     */
    public static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
