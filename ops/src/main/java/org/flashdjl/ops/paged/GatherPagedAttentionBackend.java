package org.flashdjl.ops.paged;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The NDArray paged backend {@code gather}: gathers each sequence's keys and values out of the page pools with one
 * index array and runs the contiguous {@link Attention} operator on them, so paged attention has no softmax math
 * of its own and means exactly what {@link AttentionSpec} and the mask rule say. Runs wherever DJL runs (the CPU
 * path of this project; correct but not fast on a GPU, where a {@code cuda} backend reads the pages in place).
 *
 * <p>Plan ({@link #prepare}): sequences with the same query count form a group, their keys right-aligned in the
 * group's longest key count and the slots in front of a shorter sequence hidden
 * ({@link AttentionProblem.Builder#optKeyPadding}: causality, windows and ALiBi depend on position differences only,
 * so each sequence keeps its own geometry); per group the plan data holds the pool slots of all its keys (int64
 * [G * Lk]) and, unless the group's query rows are one contiguous range, their row indices (int64 [G * Lq]); when
 * the groups do not come out in packed order, one inverse permutation (int64 [totalQ]) puts the rows back. A decode
 * batch is one group whatever its sequences' lengths: one gather and one batched {@code Attention} call per layer,
 * with the plan's {@link PagedPlan#getDenseBackend() dense backend}. Attention sinks count absolute key indices,
 * which padding would shift: calls with sinks use groups of one (query count, key count), built on first use.
 * Forward builds no index array: they all live in the plan data.
 *
 * <p>Only slots inside each sequence's length are gathered: the unfilled tail of a last page and every page not in
 * the table are never read.
 */
public final class GatherPagedAttentionBackend implements PagedAttentionBackend {

    /** The backend name. */
    public static final String NAME = "gather";

    private static final Logger logger = LoggerFactory.getLogger(GatherPagedAttentionBackend.class);

    /** Creates the backend (the registry does); each plan names the dense backend it runs. */
    public GatherPagedAttentionBackend() {}

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return NAME;
    }

    /** {@inheritDoc} */
    @Override
    public String getDescription() {
        return "gathers each sequence's keys, then the dense operator (any device DJL runs on)";
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return 10;
    }

    /** {@inheritDoc} */
    @Override
    public String unavailableReason() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedPlan plan) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public String unsupportedReason(PagedAttentionProblem problem) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public PlanData prepare(PagedPlan plan, NDManager manager) {
        return new GatherIndices(plan, manager, group(plan, manager, false));
    }

    /**
     * Groups the plan's sequences: by query count, keys right-aligned and padded to the group's longest
     * ({@code exact == false}), or by (query count, key count) without padding.
     */
    private static Grouping group(PagedPlan plan, NDManager manager, boolean exact) {
        PageTable table = plan.getPageTable();
        Map<Long, List<Integer>> byShape = new LinkedHashMap<>();
        for (int b = 0; b < plan.getBatchSize(); b++) {
            int lq = plan.getQueryLength(b);
            if (lq > 0) {
                long key = exact ? ((long) lq << 32) | table.getSeqLen(b) : lq;
                byShape.computeIfAbsent(key, k -> new ArrayList<>()).add(b);
            }
        }
        int[] qo = plan.getQoIndptr();
        List<Group> groups = new ArrayList<>();
        long[] order = new long[plan.getTotalQueries()]; // packed row of each output row, in group order
        int r = 0;
        boolean identity = true;
        for (List<Integer> seqs : byShape.values()) {
            int lq = plan.getQueryLength(seqs.get(0));
            int lk = seqs.stream().mapToInt(table::getSeqLen).max().orElse(0);
            int g = seqs.size();
            long[] rows = new long[g * lq];
            long[] slots = new long[g * lk]; // padding slots read slot 0: its keys are hidden
            int[] padding = new int[g];
            boolean padded = false;
            for (int i = 0; i < g; i++) {
                int b = seqs.get(i);
                for (int t = 0; t < lq; t++) {
                    rows[i * lq + t] = qo[b] + t;
                }
                padding[i] = lk - table.getSeqLen(b);
                padded |= padding[i] > 0;
                for (int j = padding[i]; j < lk; j++) {
                    slots[i * lk + j] = table.getSlot(b, j - padding[i]);
                }
            }
            boolean contiguous = true;
            for (int t = 1; t < rows.length; t++) {
                contiguous &= rows[t] == rows[t - 1] + 1;
            }
            for (long row : rows) {
                identity &= row == r;
                order[r++] = row;
            }
            NDArray rowIndex = contiguous ? null : indexArray(manager, rows);
            NDArray slotIndex = lk == 0 ? null : indexArray(manager, slots);
            groups.add(new Group(g, lq, lk, (int) rows[0], padded ? padding : null, rowIndex, slotIndex));
        }
        NDArray inverse = null;
        if (!identity) {
            long[] inv = new long[order.length];
            for (int i = 0; i < order.length; i++) {
                inv[(int) order[i]] = i;
            }
            inverse = indexArray(manager, inv);
        }
        logger.debug("gather plan: {} sequences, {} query rows, {} {} groups, permuted={}", plan.getBatchSize(),
                plan.getTotalQueries(), groups.size(), exact ? "exact" : "padded", inverse != null);
        return new Grouping(groups, inverse);
    }

    private static NDArray indexArray(NDManager manager, long[] values) {
        return manager.create(values, new Shape(values.length));
    }

    /** {@inheritDoc} */
    @Override
    public AttentionOutput forward(PagedAttentionProblem problem) {
        if (!(problem.getPlanData() instanceof GatherIndices)) {
            throw new IllegalArgumentException("the plan was prepared by backend '"
                    + problem.getPlan().getBackend().getName() + "', not '" + NAME + "'");
        }
        GatherIndices ws = (GatherIndices) problem.getPlanData();
        PagedPlan plan = problem.getPlan();
        NDArray q = problem.getQuery(); // [totalQ, Hq, D]
        int hq = plan.getQueryHeads();
        int hkv = plan.getKvHeads();
        int d = plan.getHeadDim();
        int dv = problem.getValueDim();
        long slotsTotal = (long) problem.getNumPages() * plan.getPageTable().getPageSize();
        boolean returnLse = problem.getSpec().isReturnLse();
        AttentionSpec spec = problem.getSpec().toBuilder().optLayout(QkvLayout.BSHD).optReturnLse(true).build();
        NDManager manager = q.getManager();
        if (plan.getTotalQueries() == 0) {
            NDArray out = manager.zeros(new Shape(0, hq, dv), q.getDataType());
            NDArray lse = returnLse ? manager.zeros(new Shape(0, hq), DataType.FLOAT32) : null;
            return new AttentionOutput(out, lse);
        }
        // sinks count global key indices, which the right-aligned padding would shift: exact groups then
        Grouping grouping = spec.getSinkTokens() > 0 ? ws.exact() : ws.padded;
        try (OpScope scope = new OpScope()) {
            NDArray kFlat = problem.getKeyPages().reshape(slotsTotal, hkv, d); // [numPages * pageSize, Hkv, D]
            NDArray vFlat = problem.getValuePages().reshape(slotsTotal, hkv, dv); // [numPages * pageSize, Hkv, Dv]
            NDList outs = new NDList(grouping.groups.size());
            NDList lses = new NDList(grouping.groups.size());
            for (Group g : grouping.groups) {
                int rows = g.count * g.lq;
                if (g.lk == 0) {
                    outs.add(manager.zeros(new Shape(rows, hq, dv), q.getDataType()));
                    lses.add(manager.full(new Shape(rows, hq), Float.NEGATIVE_INFINITY, DataType.FLOAT32));
                    continue;
                }
                NDArray qg = g.rowIndex == null
                        ? q.get(new NDIndex("{}:{}", g.firstRow, g.firstRow + rows))
                        : q.get(g.rowIndex); // [G * Lq, Hq, D]
                NDArray kg = kFlat.get(g.slotIndex).reshape(g.count, g.lk, hkv, d); // [G, Lk, Hkv, D]
                NDArray vg = vFlat.get(g.slotIndex).reshape(g.count, g.lk, hkv, dv); // [G, Lk, Hkv, Dv]
                // every sequence's keys end at Lk (right-aligned), so relative positions are its own
                long queryStart = problem.getKeyOffset() + g.lk - g.lq;
                AttentionProblem.Builder dense = AttentionProblem.builder(qg.reshape(g.count, g.lq, hq, d), kg, vg,
                        spec).optPositions(queryStart, problem.getKeyOffset());
                if (g.padding != null) {
                    dense.optKeyPadding(g.padding); // the padding slots are hidden keys
                }
                AttentionOutput o = Attention.forward(dense.build(), plan.getDenseBackend());
                outs.add(o.getOutput().reshape(rows, hq, dv)); // [G * Lq, Hq, Dv]
                lses.add(o.getLse().reshape(rows, hq)); // [G, Lq, Hq] -> [G * Lq, Hq]
            }
            NDArray out = outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 0); // [totalQ, Hq, Dv]
            NDArray lse = lses.size() == 1 ? lses.get(0) : NDArrays.concat(lses, 0); // [totalQ, Hq]
            if (grouping.inverse != null) {
                out = out.get(grouping.inverse);
                lse = lse.get(grouping.inverse);
            }
            return new AttentionOutput(scope.ret(out), returnLse ? scope.ret(lse) : null);
        }
    }

    /**
     * Sequences with one query count (exact groupings: and one key count), their keys right-aligned in {@code lk}
     * slots: sequence i's first {@code padding[i]} slots are padding (hidden keys).
     */
    private static final class Group {
        final int count;
        final int lq;
        final int lk;
        final int firstRow;
        final int[] padding; // [count] hidden leading slots per sequence, null when every sequence fills lk
        final NDArray rowIndex; // int64 [count * lq], null when rows are firstRow .. firstRow + count * lq
        final NDArray slotIndex; // int64 [count * lk], null when lk == 0

        Group(int count, int lq, int lk, int firstRow, int[] padding, NDArray rowIndex, NDArray slotIndex) {
            this.count = count;
            this.lq = lq;
            this.lk = lk;
            this.firstRow = firstRow;
            this.padding = padding;
            this.rowIndex = rowIndex;
            this.slotIndex = slotIndex;
        }
    }

    /** The groups of one grouping and the permutation back to packed row order. */
    private static final class Grouping {
        final List<Group> groups;
        final NDArray inverse; // int64 [totalQ], null when the groups come out in packed order

        Grouping(List<Group> groups, NDArray inverse) {
            this.groups = groups;
            this.inverse = inverse;
        }

        void close() {
            for (Group g : groups) {
                if (g.rowIndex != null) {
                    g.rowIndex.close();
                }
                if (g.slotIndex != null) {
                    g.slotIndex.close();
                }
            }
            if (inverse != null) {
                inverse.close();
            }
        }
    }

    /**
     * The gather indices of one plan: sequences grouped by query count with padded keys, and, built by the first
     * call that needs it (attention sinks), grouped by (query count, key count).
     */
    private static final class GatherIndices implements PlanData {
        final PagedPlan plan;
        final NDManager manager;
        final Grouping padded;
        private Grouping exact;

        GatherIndices(PagedPlan plan, NDManager manager, Grouping padded) {
            this.plan = plan;
            this.manager = manager;
            this.padded = padded;
        }

        synchronized Grouping exact() {
            if (exact == null) {
                exact = padded.groups.stream().allMatch(g -> g.padding == null) ? padded : group(plan, manager, true);
                OpScope.keepAll(manager); // plan data: lives until the plan closes, whatever scope is open now
            }
            return exact;
        }

        @Override
        public void close() {
            padded.close();
            if (exact != null && exact != padded) {
                exact.close();
            }
        }
    }
}
