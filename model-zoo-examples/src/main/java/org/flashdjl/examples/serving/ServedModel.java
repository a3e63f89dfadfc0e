package org.flashdjl.examples.serving;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDResource;

import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.generate.RollingBatchScheduler;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What one served model holds on one device: the LLaMA weights, the tokenizer and the rolling-batch scheduler
 * (its thread and KV pool). It lives under the DJL model's manager, in place of its own sub-manager, so {@code
 * ZooModel.close()} stops the scheduler before any weight is freed (a manager closes its resources in no fixed
 * order), and the manager tree still counts every array it holds.
 */
final class ServedModel implements NDResource {

    private final NDManager parent;
    private final NDManager manager;
    private final String uid;
    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final RollingBatchScheduler scheduler;
    private final AtomicBoolean closed = new AtomicBoolean();

    private ServedModel(NDManager parent, NDManager manager, String uid, LlamaModel model, TextTokenizer tokenizer,
            RollingBatchScheduler scheduler) {
        this.parent = parent;
        this.manager = manager;
        this.uid = uid;
        this.model = model;
        this.tokenizer = tokenizer;
        this.scheduler = scheduler;
    }

    /**
     * Loads a model directory under a DJL model's manager: checks the limits against {@code config.json} and the
     * device first, then loads the weights, the tokenizer, and starts the scheduler.
     *
     * @param dir the model directory
     * @param modelManager the DJL model's manager (its device is the model's)
     * @param config the directory's serving keys
     * @return the served model, attached to {@code modelManager}
     * @throws IOException if the checkpoint or tokenizer cannot be read (naming the file)
     */
    static ServedModel load(Path dir, NDManager modelManager, ServingConfig config) throws IOException {
        LlamaConfig llamaConfig = LlamaConfig.read(dir.resolve("config.json"));
        config.checkModel(llamaConfig, modelManager.getDevice());
        NDManager m = modelManager.newSubManager();
        String uid = m.getName(); // a manager's name is its uid until it is named; the parent keys it by uid
        TextTokenizer tokenizer = null;
        try {
            AttentionOptions options = AttentionOptions.builder().optBackend(config.getAttentionBackend())
                    .optSlidingWindow(config.getSlidingWindow()).optSinkTokens(config.getSinkTokens()).build();
            LlamaModel model = LlamaLoader.load(dir, m, options, config.getDataType(m.getDevice()));
            tokenizer = LoadedModel.tokenizerFor(dir, model.getConfig());
            RollingBatchScheduler scheduler = RollingBatchScheduler.builder().setModel(model).setTokenizer(tokenizer)
                    .setManager(m).optMaxRollingBatchSize(config.getMaxRollingBatchSize())
                    .optMaxNumBatchedTokens(config.getMaxNumBatchedTokens())
                    .optKvCache(config.getKvNumPages(), config.getKvPageSize())
                    .optAdmissionTimeoutMillis(config.getAdmissionTimeoutMillis())
                    .optThreadName("flashdjl-rolling-batch-" + modelManager.getDevice()).build();
            ServedModel served = new ServedModel(modelManager, m, uid, model, tokenizer, scheduler);
            modelManager.detachInternal(uid);
            modelManager.attachInternal(uid, served);
            return served;
        } catch (IOException | RuntimeException | Error e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            m.close();
            throw e;
        }
    }

    /** @return the model */
    LlamaModel model() {
        return model;
    }

    /** @return the tokenizer */
    TextTokenizer tokenizer() {
        return tokenizer;
    }

    /** @return the scheduler */
    RollingBatchScheduler scheduler() {
        return scheduler;
    }

    /** {@inheritDoc} */
    @Override
    public NDManager getManager() {
        return parent;
    }

    /** {@inheritDoc} */
    @Override
    public List<NDArray> getResourceNDArrays() {
        return manager.getManagedArrays();
    }

    /** {@inheritDoc} */
    @Override
    public void attach(NDManager newManager) {
        throw new UnsupportedOperationException("a served model stays under its DJL model's manager");
    }

    /** {@inheritDoc} */
    @Override
    public void tempAttach(NDManager newManager) {
        throw new UnsupportedOperationException("a served model stays under its DJL model's manager");
    }

    /** {@inheritDoc} */
    @Override
    public void detach() {
        parent.detachInternal(uid);
    }

    /** Stops the scheduler (waiting requests get 503, running ones end), then frees the weights and the pool. */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        scheduler.close();
        tokenizer.close();
        manager.close();
    }
}
