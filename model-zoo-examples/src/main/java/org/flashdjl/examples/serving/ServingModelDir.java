package org.flashdjl.examples.serving;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;

import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.llama.AttentionOptions;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.examples.llama.LlamaLoader;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.examples.tokenizer.TextTokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Writes a self-contained model directory that DJL Serving ({@code djl-serving -m DIR}) and DJL's {@code
 * Criteria} load with nothing but DJL's api and PyTorch engine on their class path:
 *
 * <pre>
 * serving.properties   engine=PyTorch, option.hasParameter=false,
 *                      blockFactory=ai.djl.nn.IdentityBlockFactory (DJL's own),
 *                      translator=org.flashdjl.examples.serving.LlamaServingTranslator (found in libs/),
 *                      minWorkers/maxWorkers, and the {@link ServingConfig} keys
 * libs/                the FlashDJL jars, tokenizers, JCuda ({@link ServingLibs})
 * config.json, *.safetensors, tokenizer.json (when the checkpoint has one)
 * README.md            how to serve it and what to send
 * </pre>
 *
 * Why these keys (DJL 0.36.0's loader, unchanged since 0.35.1): {@code BaseModelLoader} looks a
 * {@code blockFactory} up in the model
 * directory's {@code classes/} and top-level jars only, and PyTorch's {@code Model.load} needs a block (or a
 * TorchScript file); {@code ServingTranslatorFactory} looks a {@code translator=} {@code ServingTranslator} up in
 * {@code libs/} (and {@code libs/classes/}) through {@code ClassLoaderUtils}; a {@code translatorFactory=} class is
 * loaded from DJL's own class loader, which never sees {@code libs/}. So DJL's identity block factory satisfies
 * the engine, and the translator, from {@code libs/}, loads the weights and runs the rolling batch.
 *
 * <p>The checkpoint is loaded (weights and tokenizer) and the limits checked against it before anything is
 * written; the directory is assembled beside the destination and moved into place, so a failure leaves nothing
 * half-written.
 */
public final class ServingModelDir {

    /** The translator DJL loads from libs/. */
    public static final String TRANSLATOR = LlamaServingTranslator.class.getName();
    /** DJL's own block factory (api jar): an identity block for the engine; the translator runs the model. */
    public static final String BLOCK_FACTORY = "ai.djl.nn.IdentityBlockFactory";

    private ServingModelDir() {}

    /**
     * Returns the {@code serving.properties} text.
     *
     * @param config the serving keys
     * @return the properties text
     */
    public static String servingProperties(ServingConfig config) {
        List<String> l = new ArrayList<>();
        l.add("# FlashDJL LLaMA-family model for DJL Serving: djl-serving -m <this directory> (README.md)");
        l.add("engine=PyTorch");
        l.add("# the weights come from *.safetensors through the translator, not from a DJL .params file");
        l.add("option.hasParameter=false");
        l.add("# DJL's own identity block satisfies the engine; the translator runs the model in its rolling batch");
        l.add("blockFactory=" + BLOCK_FACTORY);
        l.add("# a ServingTranslator that DJL finds in libs/");
        l.add("translator=" + TRANSLATOR);
        l.add("# DJL Serving workers: each non-streamed request holds one while it waits for its tokens");
        l.add("minWorkers=" + config.getMaxRollingBatchSize());
        l.add("maxWorkers=" + config.getMaxRollingBatchSize());
        l.addAll(config.toPropertyLines());
        l.add("");
        return String.join("\n", l);
    }

    /**
     * Checks a checkpoint, then writes the directory.
     *
     * @param dest the model directory to create; it must not exist, be empty, or be an earlier serving directory
     *     (which is replaced)
     * @param checkpoint the source checkpoint (config.json, *.safetensors, optional tokenizer.json)
     * @param config the serving keys
     * @return {@code dest}
     * @throws IOException naming the file and the reason when the checkpoint is unusable or a file cannot be
     *     written
     * @throws IllegalArgumentException when a limit does not fit the model
     */
    public static Path write(Path dest, Path checkpoint, ServingConfig config) throws IOException {
        return write(dest, checkpoint, config, true);
    }

    /**
     * Checks a checkpoint, then writes the directory, with or without {@code libs/}.
     *
     * @param dest the model directory to create; it must not exist, be empty, or be an earlier serving directory
     *     (which is replaced)
     * @param checkpoint the source checkpoint (config.json, *.safetensors, optional tokenizer.json)
     * @param config the serving keys
     * @param withLibs false for a server (or an in-process {@code Criteria} user) that has FlashDJL on its own
     *     class path: DJL then finds the translator there
     * @return {@code dest}
     * @throws IOException naming the file and the reason when the checkpoint is unusable or a file cannot be
     *     written
     * @throws IllegalArgumentException when a limit does not fit the model
     */
    public static Path write(Path dest, Path checkpoint, ServingConfig config, boolean withLibs) throws IOException {
        check(checkpoint, config);
        Path target = dest.toAbsolutePath().normalize();
        if (Files.exists(target) && !Files.isDirectory(target)) {
            throw new IOException("cannot write the serving directory " + target + ": a file of that name exists");
        }
        if (Files.isDirectory(target) && !isEmpty(target) && !Files.isRegularFile(target.resolve(
                "serving.properties"))) {
            throw new IOException("cannot write the serving directory " + target + ": it exists, is not empty and"
                    + " is not a serving directory (no serving.properties); choose another --out or empty it");
        }
        Path parent = target.getParent();
        Path tmp = parent.resolve("." + target.getFileName() + ".partial-" + UUID.randomUUID());
        try {
            Files.createDirectories(parent);
            try {
                Files.createDirectory(tmp);
            } catch (IOException e) {
                throw new IOException(parent + " does not accept a new directory (" + reason(e) + "; "
                        + fileSystem(parent) + ")", e);
            }
            if (withLibs) {
                ServingLibs.write(tmp.resolve("libs"));
            }
            link(checkpoint.resolve("config.json"), tmp.resolve("config.json"));
            for (Path f : LlamaLoader.safetensorsFiles(checkpoint)) {
                link(f, tmp.resolve(f.getFileName().toString()));
            }
            Path tok = checkpoint.resolve("tokenizer.json");
            if (Files.isRegularFile(tok)) {
                link(tok, tmp.resolve("tokenizer.json"));
            }
            Files.write(tmp.resolve("serving.properties"), servingProperties(config).getBytes(StandardCharsets.UTF_8));
            Files.write(tmp.resolve("README.md"), readme(config).getBytes(StandardCharsets.UTF_8));
            if (Files.isDirectory(target)) {
                deleteTree(target);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            return dest;
        } catch (IOException e) {
            throw new IOException("cannot write the serving directory " + target + ": " + explain(e), e);
        } finally {
            if (Files.exists(tmp)) {
                deleteTree(tmp);
            }
        }
    }

    // Loads the checkpoint (weights and tokenizer) on the CPU and checks the limits against it.
    private static void check(Path checkpoint, ServingConfig config) throws IOException {
        if (!Files.isDirectory(checkpoint)) {
            throw new IOException("model directory not found: " + checkpoint);
        }
        LlamaConfig lc = LlamaConfig.read(checkpoint.resolve("config.json"));
        config.checkModel(lc, Device.cpu());
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            AttentionOptions options = AttentionOptions.builder().optBackend(config.getAttentionBackend())
                    .optSlidingWindow(config.getSlidingWindow()).optSinkTokens(config.getSinkTokens()).build();
            LlamaModel model = LlamaLoader.load(checkpoint, m, options, config.getDataType(Device.cpu()));
            TextTokenizer tokenizer = LoadedModel.tokenizerFor(checkpoint, model.getConfig());
            tokenizer.close();
        }
    }

    private static void link(Path source, Path target) throws IOException {
        try {
            Files.createLink(target, source.toAbsolutePath());
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static String fileSystem(Path dir) {
        try {
            java.nio.file.FileStore fs = Files.getFileStore(dir);
            return "it is on a '" + fs.type() + "' file system" + (fs.isReadOnly() ? ", read-only" : "");
        } catch (IOException | RuntimeException e) {
            return "its file system is unknown";
        }
    }

    private static String reason(IOException e) {
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof FileSystemException && ((FileSystemException) e).getReason() != null) {
            return ((FileSystemException) e).getReason().toLowerCase(Locale.ROOT);
        }
        return e instanceof NoSuchFileException ? "no such file or directory" : String.valueOf(e.getMessage());
    }

    // A file-system failure in words: what could not be done to which path, and why.
    static String explain(IOException e) {
        if (e.getCause() instanceof IOException && e.getMessage() != null && !(e instanceof FileSystemException)) {
            return e.getMessage();
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied on " + ((FileSystemException) e).getFile();
        }
        if (e instanceof FileAlreadyExistsException) {
            return ((FileSystemException) e).getFile() + " already exists";
        }
        if (e instanceof NoSuchFileException) {
            return ((FileSystemException) e).getFile() + ": no such file or directory";
        }
        if (e instanceof FileSystemException) {
            FileSystemException f = (FileSystemException) e;
            String reason = f.getReason() == null ? e.getClass().getSimpleName() : f.getReason();
            return f.getFile() + ": " + reason.toLowerCase(Locale.ROOT);
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static String readme(ServingConfig config) {
        return String.join("\n",
                "# FlashDJL model for DJL Serving",
                "",
                "A LLaMA-family model (`config.json`, `*.safetensors`) served by FlashDJL's `LlamaServingTranslator`"
                        + " (in `libs/`) with rolling batching over a paged KV cache and streamed tokens.",
                "",
                "## Serve it",
                "",
                "```bash",
                "djl-serving -m flashdjl=file://$PWD        # this directory; the model is named flashdjl",
                "```",
                "",
                "DJL Serving needs only its own PyTorch engine; everything else is in `libs/` (FlashDJL, DJL's"
                        + " Hugging Face tokenizers, JCuda). Nothing is downloaded: run it with `-Dai.djl.offline=true`"
                        + " when the machine has no network. The weights load on the first request.",
                "",
                "## Requests",
                "",
                "```bash",
                "curl -X POST http://localhost:8080/predictions/flashdjl -H 'Content-Type: application/json' \\",
                "     -d '{\"prompt\": \"Once upon a time\", \"max_new_tokens\": 32}'",
                "curl -N -X POST http://localhost:8080/predictions/flashdjl -H 'Content-Type: application/json' \\",
                "     -d '{\"inputs\": \"Once upon a time\", \"parameters\": {\"max_new_tokens\": 32}, \"stream\": true}'",
                "```",
                "",
                "Fields: `prompt` (or `inputs`), `max_new_tokens` (1.." + config.getMaxNewTokens() + "), `temperature`"
                        + " (0 = greedy .. 100), `top_k` (0 = off), `top_p` (1e-6..1), `seed`, `do_sample`, `stream`."
                        + " Generation settings go either at the top level or all inside `parameters`, never both;"
                        + " unknown fields are refused.",
                "",
                "Answers: 200 `{\"generated_text\", \"token_ids\", \"finish_reason\", \"prompt_tokens\","
                        + " \"generated_tokens\"}`; with `\"stream\": true`, JSON lines `{\"index\", \"token_id\","
                        + " \"text\"}` as tokens are generated, then `{\"text\", \"finish_reason\", \"prompt_tokens\","
                        + " \"generated_tokens\", \"generated_text\"}`. 400 `{\"error\", \"code\"}` for a client"
                        + " mistake (prompt over " + config.getMaxPromptTokens() + " tokens, bad values); 503 when"
                        + " no room frees up within admission_timeout_ms or request_timeout_ms runs out; 500 when"
                        + " the model cannot load or run.",
                "",
                "## Settings",
                "",
                "`serving.properties` holds the limits, the rolling batch (`max_rolling_batch_size`,"
                        + " `max_num_batched_tokens`), the KV pool (`kv_num_pages` x `kv_page_size`, allocated once"
                        + " at load), the time limits and the dtype, each with a comment. They are checked when the"
                        + " model loads; a bad value fails the load with the key and what is allowed. Concurrent"
                        + " requests share one decode loop per model and device; `minWorkers`/`maxWorkers` let that"
                        + " many non-streamed requests wait at once.",
                "");
    }
}
