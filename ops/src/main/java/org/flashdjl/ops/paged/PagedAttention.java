package org.flashdjl.ops.paged;

import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;

/**
 * Paged attention over K/V page pools: decode (one query token per sequence) and append / chunked prefill (several
 * query tokens per sequence, causal bottom-right against the cached length), with GQA, window, sinks, softcap,
 * ALiBi and LSE as {@link AttentionSpec} defines them. One-shot entry points; for several layers of one step build
 * a {@link PagedPlan} once and call {@link PagedPlan#forward} per layer.
 *
 * <p>Shapes: decode q [B, Hq, D], output [B, Hq, Dv], LSE [B, Hq]; prefill q [totalQ, Hq, D] packed by
 * {@code qoIndptr} [B + 1], output [totalQ, Hq, Dv], LSE [totalQ, Hq] (fp32, natural log; FlashInfer's layout,
 * which {@link org.flashdjl.ops.cascade.MergeState} pairs with the output as is). Pages: k [numPages, pageSize,
 * Hkv, D], v [numPages, pageSize, Hkv, Dv] (NHD). The queries are the last {@code Lq_b} tokens of each sequence,
 * already written to the pages.
 *
 * <pre>{@code
 * PageTable table = cache.pageTable(seqIds);                      // or PageTable.fromCsr(...) / fromBlockTable(...)
 * AttentionSpec spec = AttentionSpec.builder().optCausal(true).optReturnLse(true).build();
 * try (AttentionOutput o = PagedAttention.decode(q, cache.getKeyPages(0), cache.getValuePages(0), table, spec)) {
 *     NDArray out = o.getOutput();                                // [B, Hq, D]
 * }
 * }</pre>
 */
public final class PagedAttention {

    private PagedAttention() {}

    /**
     * Decode with the {@code auto} backend: one query token per sequence.
     *
     * @param q queries [B, Hq, D]
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param table the B sequences' pages
     * @param spec what to compute
     * @return output [B, Hq, Dv] and, when the spec asks, LSE [B, Hq]
     */
    public static AttentionOutput decode(NDArray q, NDArray kPages, NDArray vPages, PageTable table,
            AttentionSpec spec) {
        return decode(q, kPages, vPages, table, spec, PagedAttentionBackends.AUTO);
    }

    /**
     * Decode with a named backend.
     *
     * @param q queries [B, Hq, D]
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param table the B sequences' pages
     * @param spec what to compute
     * @param backend a name from {@link PagedAttentionBackends#names()}
     * @return output [B, Hq, Dv] and, when the spec asks, LSE [B, Hq]
     */
    public static AttentionOutput decode(NDArray q, NDArray kPages, NDArray vPages, PageTable table,
            AttentionSpec spec, String backend) {
        return run(q, null, kPages, vPages, table, spec, backend);
    }

    /**
     * Append / chunked prefill with the {@code auto} backend.
     *
     * @param q packed queries [totalQ, Hq, D]
     * @param qoIndptr [B + 1] query row offsets of the sequences
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param table the B sequences' pages (holding the queries' own tokens)
     * @param spec what to compute
     * @return output [totalQ, Hq, Dv] and, when the spec asks, LSE [totalQ, Hq]
     */
    public static AttentionOutput prefill(NDArray q, int[] qoIndptr, NDArray kPages, NDArray vPages,
            PageTable table, AttentionSpec spec) {
        return prefill(q, qoIndptr, kPages, vPages, table, spec, PagedAttentionBackends.AUTO);
    }

    /**
     * Append / chunked prefill with a named backend.
     *
     * @param q packed queries [totalQ, Hq, D]
     * @param qoIndptr [B + 1] query row offsets of the sequences
     * @param kPages key pages [numPages, pageSize, Hkv, D]
     * @param vPages value pages [numPages, pageSize, Hkv, Dv]
     * @param table the B sequences' pages (holding the queries' own tokens)
     * @param spec what to compute
     * @param backend a name from {@link PagedAttentionBackends#names()}
     * @return output [totalQ, Hq, Dv] and, when the spec asks, LSE [totalQ, Hq]
     */
    public static AttentionOutput prefill(NDArray q, int[] qoIndptr, NDArray kPages, NDArray vPages,
            PageTable table, AttentionSpec spec, String backend) {
        if (qoIndptr == null) {
            throw new IllegalArgumentException("qoIndptr must not be null for prefill ([batch + 1] offsets)");
        }
        return run(q, qoIndptr, kPages, vPages, table, spec, backend);
    }

    private static AttentionOutput run(NDArray q, int[] qoIndptr, NDArray kPages, NDArray vPages, PageTable table,
            AttentionSpec spec, String backend) {
        Checks.checkRank("q", q, 3, qoIndptr == null ? "[batch, Hq, D] (decode)" : "[totalQ, Hq, D] (prefill)");
        Checks.checkRank("kPages", kPages, 4, "[numPages, pageSize, Hkv, D] (NHD)");
        if (qoIndptr == null && q.getShape().get(0) != table.getBatchSize()) {
            throw new IllegalArgumentException("decode q " + q.getShape() + " needs one row per sequence of the page"
                    + " table (" + table.getBatchSize() + ")");
        }
        PagedPlan.Builder builder = PagedPlan.builder(table)
                .setQueryHeads((int) q.getShape().get(1))
                .setKvHeads((int) kPages.getShape().get(2))
                .setHeadDim((int) q.getShape().get(2))
                .optDevice(q.getDevice())
                .optDataType(q.getDataType())
                .optBackend(backend);
        if (qoIndptr != null) {
            builder.optQoIndptr(qoIndptr);
        }
        try (PagedPlan plan = builder.build()) {
            return plan.forward(q, kPages, vPages, spec);
        }
    }
}
