package org.flashdjl.examples.generate;

/**
 * One prompt for {@link BatchGenerator}: its ids, its generation config, and the decode step at which it arrives
 * (0 = at the start), so tests and demos can model requests joining a running batch.
 */
public final class BatchRequest {

    private final int[] promptIds;
    private final GenerationConfig config;
    private final int arrivalStep;

    /**
     * Creates a request.
     *
     * @param promptIds the prompt ids (at least one)
     * @param config what to generate
     * @param arrivalStep the batch step at which the request becomes available, {@code >= 0}
     */
    public BatchRequest(int[] promptIds, GenerationConfig config, int arrivalStep) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        this.promptIds = promptIds.clone();
        this.config = config;
        this.arrivalStep = arrivalStep;
    }

    /** @return a copy of the prompt ids */
    public int[] getPromptIds() {
        return promptIds.clone();
    }

    /** @return the generation config */
    public GenerationConfig getConfig() {
        return config;
    }

    /** @return the step at which it arrives */
    public int getArrivalStep() {
        return arrivalStep;
    }
}
