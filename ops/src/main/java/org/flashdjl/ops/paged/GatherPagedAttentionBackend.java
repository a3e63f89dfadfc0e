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
 * <p>Plan ({@link #prepare}): sequences with the same (query count, key count) form a group; per group the
 * plan data holds the pool slots of all its keys (int64 [G * Lk]) and, unless the group's query rows are one
 * contiguous range, their row indices (int64 [G * Lq]); when the groups do not come out in packed order, one
 * inverse permutation (int64 [totalQ]) puts the rows back. A uniform decode batch is one group: one gather and one
 * batched {@code Attention} call per layer, with the plan's {@link PagedPlan#getDenseBackend() dense backend}.
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
        PageTable table = plan.getPageTable();
        Map<Long, List<Integer>> byShape = new LinkedHashMap<>();
        for (int b = 0; b < plan.getBatchSize(); b++) {
            int lq = plan.getQueryLength(b);
            if (lq > 0) {
                long key = ((long) lq << 32) | table.getSeqLen(b);
                byShape.computeIfAbsent(key, k -> new ArrayList<>()).add(b);
            }
        }
        int[] qo = plan.getQoIndptr();
        List<Group> groups = new ArrayList<>();
        long[] order = new long[plan.getTotalQueries()]; // packed row of each output row, in group order
        int r = 0;
        boolean identity = true;
        for (Map.Entry<Long, List<Integer>> e : byShape.entrySet()) {
            int lq = (int) (e.getKey() >>> 32);
            int lk = (int) (long) e.getKey();
            List<Integer> seqs = e.getValue();
            int g = seqs.size();
            long[] rows = new long[g * lq];
            long[] slots = new long[g * lk];
            for (int i = 0; i < g; i++) {
                int b = seqs.get(i);
                for (int t = 0; t < lq; t++) {
                    rows[i * lq + t] = qo[b] + t;
                }
                for (int j = 0; j < lk; j++) {
                    slots[i * lk + j] = table.getSlot(b, j);
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
            groups.add(new Group(g, lq, lk, (int) rows[0], rowIndex, slotIndex));
        }
        NDArray inverse = null;
        if (!identity) {
            long[] inv = new long[order.length];
            for (int i = 0; i < order.length; i++) {
                inv[(int) order[i]] = i;
            }
            inverse = indexArray(manager, inv);
        }
        logger.debug("gather plan: {} sequences, {} query rows, {} groups, permuted={}", plan.getBatchSize(),
                plan.getTotalQueries(), groups.size(), inverse != null);
        return new GatherIndices(groups, inverse);
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
        try (OpScope scope = new OpScope()) {
            NDArray kFlat = problem.getKeyPages().reshape(slotsTotal, hkv, d); // [numPages * pageSize, Hkv, D]
            NDArray vFlat = problem.getValuePages().reshape(slotsTotal, hkv, dv); // [numPages * pageSize, Hkv, Dv]
            NDList outs = new NDList(ws.groups.size());
            NDList lses = new NDList(ws.groups.size());
            for (Group g : ws.groups) {
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
                long queryStart = problem.getKeyOffset() + g.lk - g.lq;
                AttentionProblem dense = AttentionProblem.builder(qg.reshape(g.count, g.lq, hq, d), kg, vg, spec)
                        .optPositions(queryStart, problem.getKeyOffset())
                        .build();
                AttentionOutput o = Attention.forward(dense, plan.getDenseBackend());
                outs.add(o.getOutput().reshape(rows, hq, dv)); // [G * Lq, Hq, Dv]
                lses.add(o.getLse().reshape(rows, hq)); // [G, Lq, Hq] -> [G * Lq, Hq]
            }
            NDArray out = outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 0); // [totalQ, Hq, Dv]
            NDArray lse = lses.size() == 1 ? lses.get(0) : NDArrays.concat(lses, 0); // [totalQ, Hq]
            if (ws.inverse != null) {
                out = out.get(ws.inverse);
                lse = lse.get(ws.inverse);
            }
            return new AttentionOutput(scope.ret(out), returnLse ? scope.ret(lse) : null);
        }
    }

    /** Sequences with one (query count, key count) shape. */
    private static final class Group {
        final int count;
        final int lq;
        final int lk;
        final int firstRow;
        final NDArray rowIndex; // int64 [count * lq], null when rows are firstRow .. firstRow + count * lq
        final NDArray slotIndex; // int64 [count * lk], null when lk == 0

        Group(int count, int lq, int lk, int firstRow, NDArray rowIndex, NDArray slotIndex) {
            this.count = count;
            this.lq = lq;
            this.lk = lk;
            this.firstRow = firstRow;
            this.rowIndex = rowIndex;
            this.slotIndex = slotIndex;
        }
    }

    /** The gather indices of one plan. */
    private static final class GatherIndices implements PlanData {
        final List<Group> groups;
        final NDArray inverse; // int64 [totalQ], null when the groups come out in packed order

        GatherIndices(List<Group> groups, NDArray inverse) {
            this.groups = groups;
            this.inverse = inverse;
        }

        @Override
        public void close() {
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

}
