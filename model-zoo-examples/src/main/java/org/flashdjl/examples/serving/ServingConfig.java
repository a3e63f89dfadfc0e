package org.flashdjl.examples.serving;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.cuda.CudaUtils;

import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.llama.LlamaConfig;
import org.flashdjl.ops.attention.AttentionBackends;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The FlashDJL keys of a serving directory's {@code serving.properties}: request limits, the rolling batch and its
 * paged KV pool, time limits and the model's dtype and attention. One place parses and checks them: {@link
 * ServingModelDir} when it writes a directory and {@link LlamaServingTranslator} when DJL loads one, so a value
 * that could not work is refused at both ends with the key, the value and what is allowed.
 *
 * <table>
 * <caption>keys</caption>
 * <tr><th>key</th><th>default</th><th>allowed</th></tr>
 * <tr><td>{@code max_prompt_tokens}</td><td>512</td><td>[1, 1048576], and with max_new_tokens within the model's
 *     {@code max_position_embeddings}</td></tr>
 * <tr><td>{@code max_new_tokens}</td><td>128</td><td>[1, 1048576], idem</td></tr>
 * <tr><td>{@code max_rolling_batch_size}</td><td>32</td><td>[1, 4096]: sequences decoded together</td></tr>
 * <tr><td>{@code max_num_batched_tokens}</td><td>512</td><td>[max_rolling_batch_size, 1048576]: tokens of one
 *     forward pass (one per decoding sequence plus prompt chunks)</td></tr>
 * <tr><td>{@code kv_page_size}</td><td>16</td><td>[1, 4096] tokens per page</td></tr>
 * <tr><td>{@code kv_num_pages}</td><td>room for max_rolling_batch_size requests of the largest size</td><td>at
 *     least one largest request; the pool (allocated once at load) must fit the device's memory</td></tr>
 * <tr><td>{@code admission_timeout_ms}</td><td>30000</td><td>[0, 3600000]: how long a request waits for room
 *     before a 503</td></tr>
 * <tr><td>{@code request_timeout_ms}</td><td>0 (none)</td><td>[0, 86400000]: a request's whole time; past it, it
 *     is cancelled and its pages freed</td></tr>
 * <tr><td>{@code dtype}</td><td>auto</td><td>auto (float16 on a GPU, float32 on the CPU), float32, float16 (weights
 * and KV pool)</td></tr>
 * <tr><td>{@code attention_backend}</td><td>auto</td><td>a dense backend name ({@code Backends})</td></tr>
 * <tr><td>{@code sliding_window}, {@code sink_tokens}</td><td>0 (off)</td><td>{@code >= 0}; sinks need a
 *     window</td></tr>
 * </table>
 *
 * <p>Other keys (DJL's {@code engine}, {@code translator}, {@code option.*}, DJL Serving's {@code minWorkers} ...)
 * are not ours and pass through untouched.
 */
public final class ServingConfig {

    /** The most tokens a prompt or a generation limit may be set to, whatever the model. */
    public static final int MAX_TOKENS = 1 << 20;

    private final int maxPromptTokens;
    private final int maxNewTokens;
    private final int maxRollingBatchSize;
    private final int maxNumBatchedTokens;
    private final int kvPageSize;
    private final int kvNumPages;
    private final long admissionTimeoutMillis;
    private final long requestTimeoutMillis;
    private final DataType dataType;
    private final String attentionBackend;
    private final int slidingWindow;
    private final int sinkTokens;

    private ServingConfig(Builder b) {
        this.maxPromptTokens = b.maxPromptTokens;
        this.maxNewTokens = b.maxNewTokens;
        this.maxRollingBatchSize = b.maxRollingBatchSize;
        this.maxNumBatchedTokens = b.maxNumBatchedTokens;
        this.kvPageSize = b.kvPageSize;
        this.kvNumPages = b.kvNumPages > 0 ? b.kvNumPages
                : (int) Math.min(Integer.MAX_VALUE, (long) b.maxRollingBatchSize * pagesPerRequest(b));
        this.admissionTimeoutMillis = b.admissionTimeoutMillis;
        this.requestTimeoutMillis = b.requestTimeoutMillis;
        this.dataType = b.dataType;
        this.attentionBackend = b.attentionBackend;
        this.slidingWindow = b.slidingWindow;
        this.sinkTokens = b.sinkTokens;
    }

    private static long pagesPerRequest(Builder b) {
        return ((long) b.maxPromptTokens + b.maxNewTokens + b.kvPageSize - 1) / b.kvPageSize;
    }

    /**
     * Returns a builder with the defaults.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Reads the keys from DJL's arguments (the non-{@code option.} keys of {@code serving.properties}).
     *
     * @param arguments the arguments; keys that are not ours are ignored
     * @return the checked config
     * @throws IllegalArgumentException naming the key, the value and what is allowed
     */
    public static ServingConfig fromArguments(Map<String, ?> arguments) {
        Builder b = builder();
        b.optMaxPromptTokens(intArg(arguments, "max_prompt_tokens", b.maxPromptTokens));
        b.optMaxNewTokens(intArg(arguments, "max_new_tokens", b.maxNewTokens));
        b.optMaxRollingBatchSize(intArg(arguments, "max_rolling_batch_size", b.maxRollingBatchSize));
        b.optMaxNumBatchedTokens(intArg(arguments, "max_num_batched_tokens", b.maxNumBatchedTokens));
        b.optKvPageSize(intArg(arguments, "kv_page_size", b.kvPageSize));
        if (string(arguments, "kv_num_pages") != null) {
            b.optKvNumPages(intArg(arguments, "kv_num_pages", 0));
        }
        b.optAdmissionTimeoutMillis(intArg(arguments, "admission_timeout_ms", (int) b.admissionTimeoutMillis));
        b.optRequestTimeoutMillis(intArg(arguments, "request_timeout_ms", (int) b.requestTimeoutMillis));
        String dtype = string(arguments, "dtype");
        if (dtype != null) {
            b.optDataType(dtype);
        }
        String backend = string(arguments, "attention_backend");
        if (backend != null) {
            b.optAttentionBackend(backend);
        }
        b.optSlidingWindow(intArg(arguments, "sliding_window", 0), intArg(arguments, "sink_tokens", 0));
        return b.build();
    }

    private static String string(Map<String, ?> args, String key) {
        Object v = args == null ? null : args.get(key);
        return v == null ? null : v.toString().trim();
    }

    private static int intArg(Map<String, ?> args, String key, int def) {
        String v = string(args, key);
        if (v == null) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("serving.properties: " + key + "='" + v
                    + "' is not an integer (32-bit)");
        }
    }

    /**
     * Checks the limits against the model and the device: prompt plus new tokens within the model's positions,
     * the KV pool within the device's memory.
     *
     * @param model the model's config
     * @param device where the pool goes
     * @throws IllegalArgumentException naming the keys and the numbers
     */
    public void checkModel(LlamaConfig model, Device device) {
        long positions = model.getMaxPositions();
        if ((long) maxPromptTokens + maxNewTokens > positions) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "serving.properties: max_prompt_tokens=%d + max_new_tokens=%d = %d tokens exceed the model's"
                            + " max_position_embeddings %d (config.json); lower them so that the sum is <= %d",
                    maxPromptTokens, maxNewTokens, (long) maxPromptTokens + maxNewTokens, positions, positions));
        }
        long bytes = kvPoolBytes(model, device);
        long available = memoryOf(device);
        if (available > 0 && bytes > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "serving.properties: the KV pool of kv_num_pages=%d x kv_page_size=%d tokens needs %.1f GiB (%d"
                            + " layers x %d KV heads x head dim %d x K+V x %s), more than the %.1f GiB of %s; lower"
                            + " kv_num_pages, or max_rolling_batch_size / max_prompt_tokens / max_new_tokens that"
                            + " size it by default",
                    kvNumPages, kvPageSize, bytes / (double) (1L << 30), model.getNumLayers(), model.getNumKvHeads(),
                    model.getHeadDim(), getDataType(device), available / (double) (1L << 30), device));
        }
    }

    /**
     * Returns the bytes of this config's KV pool for a model.
     *
     * @param model the model's config
     * @param device the device the pool lives on (it decides the dtype when {@code dtype=auto})
     * @return pages x page size x layers x KV heads x head dim x 2 (K and V) x bytes per element
     */
    public long kvPoolBytes(LlamaConfig model, Device device) {
        return (long) kvNumPages * kvPageSize * model.getNumLayers() * model.getNumKvHeads() * model.getHeadDim()
                * 2L * getDataType(device).getNumOfBytes();
    }

    private static long memoryOf(Device device) {
        if (device.isGpu()) {
            MemoryUsage m = CudaUtils.hasCuda() ? CudaUtils.getGpuMemory(device) : null;
            return m == null ? 0 : m.getMax();
        }
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getTotalMemorySize();
        }
        return 0;
    }

    /**
     * Returns the keys as {@code serving.properties} lines, with a comment each.
     *
     * @return the lines
     */
    public List<String> toPropertyLines() {
        List<String> l = new ArrayList<>();
        for (Map.Entry<String, String[]> e : entries().entrySet()) {
            l.add("# " + e.getValue()[1]);
            l.add(e.getKey() + "=" + e.getValue()[0]);
        }
        return l;
    }

    private Map<String, String[]> entries() {
        Map<String, String[]> m = new LinkedHashMap<>();
        m.put("max_prompt_tokens", new String[] {String.valueOf(maxPromptTokens),
            "longest prompt accepted, in tokens (BOS included); longer ones get 400"});
        m.put("max_new_tokens", new String[] {String.valueOf(maxNewTokens),
            "largest max_new_tokens a request may ask for; larger ones get 400"});
        m.put("max_rolling_batch_size", new String[] {String.valueOf(maxRollingBatchSize),
            "most requests decoded together in the rolling batch"});
        m.put("max_num_batched_tokens", new String[] {String.valueOf(maxNumBatchedTokens),
            "most tokens of one forward pass: one per decoding request plus prompt chunks (chunked prefill)"});
        m.put("kv_page_size", new String[] {String.valueOf(kvPageSize), "tokens per KV cache page"});
        m.put("kv_num_pages", new String[] {String.valueOf(kvNumPages),
            "pages in the KV pool, allocated once when the model loads; a request is admitted when the pool holds"
                    + " its worst case (prompt + max_new_tokens)"});
        m.put("admission_timeout_ms", new String[] {String.valueOf(admissionTimeoutMillis),
            "how long a request waits for room in the batch before it gets 503"});
        m.put("request_timeout_ms", new String[] {String.valueOf(requestTimeoutMillis),
            "a request's whole time limit (0 = none); past it, it is cancelled and its pages freed"});
        m.put("dtype", new String[] {dataType == null ? "auto" : dataType == DataType.FLOAT16 ? "float16" : "float32",
            "weights and KV pool: auto (float16 on a GPU, float32 on the CPU), float32 or float16"});
        m.put("attention_backend", new String[] {attentionBackend, "dense attention backend: auto, online, math,"
                + " flash"});
        m.put("sliding_window", new String[] {String.valueOf(slidingWindow),
            "0 = the checkpoint's own (off when it has none); N = each token sees the N most recent tokens"});
        m.put("sink_tokens", new String[] {String.valueOf(sinkTokens), "with sliding_window: tokens always seen"});
        return m;
    }

    /** @return the longest prompt, in tokens */
    public int getMaxPromptTokens() {
        return maxPromptTokens;
    }

    /** @return the largest max_new_tokens */
    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /** @return the most sequences decoded together */
    public int getMaxRollingBatchSize() {
        return maxRollingBatchSize;
    }

    /** @return the most tokens of one forward pass */
    public int getMaxNumBatchedTokens() {
        return maxNumBatchedTokens;
    }

    /** @return tokens per KV page */
    public int getKvPageSize() {
        return kvPageSize;
    }

    /** @return pages in the KV pool */
    public int getKvNumPages() {
        return kvNumPages;
    }

    /** @return the admission timeout in milliseconds */
    public long getAdmissionTimeoutMillis() {
        return admissionTimeoutMillis;
    }

    /** @return the request time limit in milliseconds, 0 = none */
    public long getRequestTimeoutMillis() {
        return requestTimeoutMillis;
    }

    /**
     * Returns the weights' and KV pool's dtype on a device: the configured one, or with {@code dtype=auto} the
     * device's default ({@link LoadedModel#defaultDataType}: float16 on a GPU, float32 on the CPU).
     *
     * @param device the model's device
     * @return float16 or float32
     */
    public DataType getDataType(Device device) {
        return dataType != null ? dataType : LoadedModel.defaultDataType(device);
    }

    /** @return the dense attention backend */
    public String getAttentionBackend() {
        return attentionBackend;
    }

    /** @return the sliding window, 0 = the checkpoint's */
    public int getSlidingWindow() {
        return slidingWindow;
    }

    /** @return the sink tokens */
    public int getSinkTokens() {
        return sinkTokens;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ServingConfig{");
        for (Map.Entry<String, String[]> e : entries().entrySet()) {
            sb.append(sb.length() > 14 ? ", " : "").append(e.getKey()).append('=').append(e.getValue()[0]);
        }
        return sb.append('}').toString();
    }

    /** Builds a {@link ServingConfig}; every setter checks its range, {@link #build} the rules across keys. */
    public static final class Builder {
        private int maxPromptTokens = 512;
        private int maxNewTokens = 128;
        private int maxRollingBatchSize = 32;
        private int maxNumBatchedTokens = 512;
        private int kvPageSize = 16;
        private int kvNumPages; // 0 = derived
        private long admissionTimeoutMillis = 30_000;
        private long requestTimeoutMillis;
        private DataType dataType; // null: auto
        private String attentionBackend = "auto";
        private int slidingWindow;
        private int sinkTokens;

        private Builder() {}

        private static int range(String key, long v, long lo, long hi, String why) {
            if (v < lo || v > hi) {
                throw new IllegalArgumentException("serving.properties: " + key + "=" + v + " is out of range: allowed "
                        + lo + ".." + hi + (why == null ? "" : " (" + why + ")"));
            }
            return (int) v;
        }

        /**
         * Sets the longest prompt accepted.
         *
         * @param n in [1, {@link #MAX_TOKENS}]
         * @return this builder
         */
        public Builder optMaxPromptTokens(long n) {
            this.maxPromptTokens = range("max_prompt_tokens", n, 1, MAX_TOKENS, null);
            return this;
        }

        /**
         * Sets the largest max_new_tokens a request may ask for.
         *
         * @param n in [1, {@link #MAX_TOKENS}]
         * @return this builder
         */
        public Builder optMaxNewTokens(long n) {
            this.maxNewTokens = range("max_new_tokens", n, 1, MAX_TOKENS, null);
            return this;
        }

        /**
         * Sets the most sequences decoded together.
         *
         * @param n in [1, 4096]
         * @return this builder
         */
        public Builder optMaxRollingBatchSize(long n) {
            this.maxRollingBatchSize = range("max_rolling_batch_size", n, 1, 4096, null);
            return this;
        }

        /**
         * Sets the most tokens of one forward pass.
         *
         * @param n in [1, {@link #MAX_TOKENS}], at least max_rolling_batch_size (checked by {@link #build})
         * @return this builder
         */
        public Builder optMaxNumBatchedTokens(long n) {
            this.maxNumBatchedTokens = range("max_num_batched_tokens", n, 1, MAX_TOKENS, null);
            return this;
        }

        /**
         * Sets the tokens per KV page.
         *
         * @param n in [1, 4096]
         * @return this builder
         */
        public Builder optKvPageSize(long n) {
            this.kvPageSize = range("kv_page_size", n, 1, 4096, null);
            return this;
        }

        /**
         * Sets the pages of the KV pool (default: max_rolling_batch_size requests of the largest size).
         *
         * @param n at least one largest request's pages (checked by {@link #build})
         * @return this builder
         */
        public Builder optKvNumPages(long n) {
            this.kvNumPages = range("kv_num_pages", n, 1, Integer.MAX_VALUE, null);
            return this;
        }

        /**
         * Sets how long a request waits for admission.
         *
         * @param ms in [0, 3600000]
         * @return this builder
         */
        public Builder optAdmissionTimeoutMillis(long ms) {
            this.admissionTimeoutMillis = range("admission_timeout_ms", ms, 0, 3_600_000, null);
            return this;
        }

        /**
         * Sets a request's whole time limit.
         *
         * @param ms in [0, 86400000], 0 = none
         * @return this builder
         */
        public Builder optRequestTimeoutMillis(long ms) {
            this.requestTimeoutMillis = range("request_timeout_ms", ms, 0, 86_400_000, "0 = none");
            return this;
        }

        /**
         * Sets the dtype of the weights and the KV pool.
         *
         * @param name {@code auto} (the default: float16 on a GPU, float32 on the CPU), {@code float32} or {@code
         *     float16}
         * @return this builder
         */
        public Builder optDataType(String name) {
            switch (name.toLowerCase(Locale.ROOT)) {
                case "auto":
                    dataType = null;
                    break;
                case "float32":
                case "fp32":
                    dataType = DataType.FLOAT32;
                    break;
                case "float16":
                case "fp16":
                    dataType = DataType.FLOAT16;
                    break;
                default:
                    throw new IllegalArgumentException("serving.properties: dtype='" + name
                            + "' is not supported: allowed auto, float32, float16 (bfloat16 NDArrays abort DJL 0.36.0's"
                            + " PyTorch JNI)");
            }
            return this;
        }

        /**
         * Sets the dense attention backend.
         *
         * @param name a registered dense backend or {@code auto}
         * @return this builder
         */
        public Builder optAttentionBackend(String name) {
            try {
                this.attentionBackend = AttentionBackends.check(name);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("serving.properties: attention_backend: " + e.getMessage(), e);
            }
            return this;
        }

        /**
         * Sets the sliding window and sink tokens.
         *
         * @param window 0 = the checkpoint's, else the tokens each token sees
         * @param sinks tokens always seen, with a window
         * @return this builder
         */
        public Builder optSlidingWindow(long window, long sinks) {
            this.slidingWindow = range("sliding_window", window, 0, Integer.MAX_VALUE, "0 = the checkpoint's");
            this.sinkTokens = range("sink_tokens", sinks, 0, Integer.MAX_VALUE, null);
            if (sinks > 0 && window == 0) {
                throw new IllegalArgumentException("serving.properties: sink_tokens=" + sinks
                        + " needs sliding_window > 0");
            }
            return this;
        }

        /**
         * Checks the rules across keys and builds.
         *
         * @return the config
         * @throws IllegalArgumentException naming the keys
         */
        public ServingConfig build() {
            if (maxNumBatchedTokens < maxRollingBatchSize) {
                throw new IllegalArgumentException("serving.properties: max_num_batched_tokens=" + maxNumBatchedTokens
                        + " must be >= max_rolling_batch_size=" + maxRollingBatchSize
                        + ": every running request feeds one token per step");
            }
            long perRequest = pagesPerRequest(this);
            if (kvNumPages > 0 && kvNumPages < perRequest) {
                throw new IllegalArgumentException("serving.properties: kv_num_pages=" + kvNumPages
                        + " cannot hold one largest request: max_prompt_tokens " + maxPromptTokens
                        + " + max_new_tokens " + maxNewTokens + " need " + perRequest + " pages of " + kvPageSize
                        + " tokens");
            }
            if (kvNumPages == 0 && (long) maxRollingBatchSize * perRequest > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("serving.properties: the default KV pool (max_rolling_batch_size "
                        + maxRollingBatchSize + " x " + perRequest + " pages) exceeds " + Integer.MAX_VALUE
                        + " pages; set kv_num_pages");
            }
            ServingConfig c = new ServingConfig(this);
            if ((long) c.kvNumPages * c.kvPageSize > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("serving.properties: kv_num_pages=" + c.kvNumPages
                        + " x kv_page_size=" + c.kvPageSize + " exceeds " + Integer.MAX_VALUE + " token slots");
            }
            return c;
        }
    }
}
