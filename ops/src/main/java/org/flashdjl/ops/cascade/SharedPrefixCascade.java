package org.flashdjl.ops.cascade;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttentionBackends;
import org.flashdjl.ops.paged.PagedPlan;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.ServiceLoader;

/**
 * The engine shared by {@link SharedPrefixBatchDecode} and {@link SharedPrefixBatchPrefill}. With the default
 * {@code auto} backends a step first goes to a registered device {@link SharedPrefixBackend} that supports it (the
 * CUDA shared-prefix decode on GPU NDArrays); otherwise, and for every layer call that backend refuses, the
 * NDArray cascade runs: a {@link PagedPlan} over the unique suffixes built once per step, and per layer the prefix
 * part (contiguous {@link Attention} over the shared K/V at global positions), the suffix part
 * ({@link PagedPlan#forward} with {@code keyOffset = P}) and their {@link MergeState#mergeState merge}.
 */
final class SharedPrefixCascade {

    private static final Logger logger = LoggerFactory.getLogger(SharedPrefixCascade.class);

    /** The device backends of the {@code auto} cascade, in ServiceLoader order. */
    private static final List<SharedPrefixBackend> DEVICE_BACKENDS = load();

    private final String pagedBackend;
    private final String denseBackend;
    private boolean active;
    private PageTable table;
    private int queryHeads;
    private int kvHeads;
    private int headDim;
    private Device device;
    private PagedPlan plan; // the NDArray cascade's plan, built when a call needs it
    private SharedPrefixBackend.Step deviceStep; // null when no device backend took the step
    private String deviceBackendName; // its backend's name
    private boolean decode; // one query per request (no qoIndptr given)
    private int[] qoIndptr; // [B + 1]
    private int[] suffixLens; // [B]

    SharedPrefixCascade(String pagedBackend, String denseBackend) {
        this.pagedBackend = Objects.requireNonNull(pagedBackend, "pagedBackend");
        this.denseBackend = Objects.requireNonNull(denseBackend, "denseBackend");
    }

    private static List<SharedPrefixBackend> load() {
        List<SharedPrefixBackend> list = new ArrayList<>();
        for (SharedPrefixBackend b : ServiceLoader.load(SharedPrefixBackend.class)) {
            list.add(b);
        }
        return Collections.unmodifiableList(list);
    }

    /**
     * Returns the registered device backends of the cascade.
     *
     * @return the backends, in ServiceLoader order
     */
    static List<SharedPrefixBackend> deviceBackends() {
        return DEVICE_BACKENDS;
    }

    void begin(PageTable table, int[] qo, int queryHeads, int kvHeads, int headDim, Device device) {
        Objects.requireNonNull(table, "table");
        boolean decode = qo == null;
        SharedPrefixBackend.Step step = null;
        String stepBackend = null;
        PagedPlan next = null;
        if (PagedAttentionBackends.AUTO.equals(pagedBackend) && AttentionBackends.AUTO.equals(denseBackend)
                && device != null) {
            for (SharedPrefixBackend b : DEVICE_BACKENDS) {
                if (b.unavailableReason() == null
                        && b.unsupportedReason(decode, queryHeads, kvHeads, headDim, device) == null) {
                    checkHeads(queryHeads, kvHeads, headDim);
                    step = b.begin(table, queryHeads, kvHeads, headDim, device);
                    stepBackend = b.getName();
                    logger.debug("shared-prefix step on backend {}", stepBackend);
                    break;
                }
            }
        }
        if (step == null) {
            next = buildPlan(table, qo, queryHeads, kvHeads, headDim, device); // validates
        }
        if (active) {
            logger.debug("beginForward while a plan is active: replacing it");
            end();
        }
        this.table = table;
        this.queryHeads = queryHeads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.device = device;
        this.decode = decode;
        this.plan = next;
        this.deviceStep = step;
        this.deviceBackendName = stepBackend;
        this.qoIndptr = next != null ? next.getQoIndptr() : decodeRows(table.getBatchSize());
        this.suffixLens = table.getSeqLens();
        this.active = true;
    }

    private static void checkHeads(int queryHeads, int kvHeads, int headDim) {
        Checks.checkAtLeast("numQoHeads", queryHeads, 1, "");
        Checks.checkAtLeast("numKvHeads", kvHeads, 1, "");
        Checks.checkAtLeast("headDim", headDim, 1, "");
        if (queryHeads % kvHeads != 0) {
            throw new IllegalArgumentException("numQoHeads " + queryHeads + " must be a multiple of numKvHeads "
                    + kvHeads);
        }
    }

    private static int[] decodeRows(int batch) {
        int[] qo = new int[batch + 1];
        for (int b = 0; b <= batch; b++) {
            qo[b] = b;
        }
        return qo;
    }

    private PagedPlan buildPlan(PageTable t, int[] qo, int hq, int hkv, int d, Device dev) {
        PagedPlan.Builder builder = PagedPlan.builder(t)
                .setQueryHeads(hq)
                .setKvHeads(hkv)
                .setHeadDim(d)
                .optBackend(pagedBackend);
        if (dev != null) {
            builder.optDevice(dev);
        }
        if (qo != null) {
            builder.optQoIndptr(qo);
        }
        return builder.build();
    }

    PagedPlan plan() {
        if (!active) {
            throw new IllegalStateException("no active plan: call beginForward(...) before forward(...); after"
                    + " endForward() a new beginForward is needed");
        }
        if (plan == null) {
            plan = buildPlan(table, decode ? null : qoIndptr, queryHeads, kvHeads, headDim, device);
        }
        return plan;
    }

    boolean isActive() {
        return active;
    }

    /**
     * Returns the name of the device backend running the active step, or null when the NDArray cascade runs it.
     *
     * @return the name or null
     */
    String deviceBackend() {
        return active ? deviceBackendName : null;
    }

    void end() {
        if (!active) {
            return;
        }
        active = false;
        try {
            if (deviceStep != null) {
                deviceStep.close();
            }
        } finally {
            deviceStep = null;
            deviceBackendName = null;
            if (plan != null) {
                plan.close();
                plan = null;
            }
            table = null;
            qoIndptr = null;
            suffixLens = null;
        }
    }

    AttentionOutput forward(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
            AttentionSpec spec) {
        if (!active) {
            throw new IllegalStateException("no active plan: call beginForward(...) before forward(...); after"
                    + " endForward() a new beginForward is needed");
        }
        Objects.requireNonNull(spec, "spec");
        Checks.checkRank("kShared", kShared, 3, "[sharedPrefixLen, Hkv, D] (NHD)");
        Checks.checkRank("vShared", vShared, 3, "[sharedPrefixLen, Hkv, Dv] (NHD)");
        Checks.checkDataType("kShared", kShared, Checks.FLOAT_TYPES);
        Checks.checkSameDataType("q", q, "kShared", kShared);
        Checks.checkSameDataType("q", q, "vShared", vShared);
        Checks.checkSameDevice("q", q, "kShared", kShared);
        Checks.checkSameDevice("q", q, "vShared", vShared);
        Shape ks = kShared.getShape();
        Shape vs = vShared.getShape();
        if (ks.get(1) != kvHeads || ks.get(2) != headDim) {
            throw new IllegalArgumentException("kShared " + ks + " must be [sharedPrefixLen, Hkv = " + kvHeads
                    + ", D = " + headDim + "] (shared prefix head dim " + ks.get(2) + ", query " + headDim + ")");
        }
        if (vs.get(0) != ks.get(0) || vs.get(1) != ks.get(1)) {
            throw new IllegalArgumentException("vShared " + vs + " must match kShared " + ks
                    + " except the last dim");
        }
        if (vs.get(2) != vPages.getShape().get(vPages.getShape().dimension() - 1)) {
            throw new IllegalArgumentException("vShared " + vs + " and vPages " + vPages.getShape()
                    + " must share the value head dim");
        }
        if (deviceStep != null && deviceStep.unsupportedReason(q, kShared, vShared, kPages, vPages, spec) == null) {
            return deviceStep.forward(q, kShared, vShared, kPages, vPages, spec);
        }
        PagedPlan p = plan();
        long prefixLen = ks.get(0);
        AttentionSpec withLse = spec.toBuilder().optReturnLse(true).build();
        try (OpScope scope = new OpScope()) {
            AttentionOutput suffix = p.forward(q, kPages, vPages, withLse, prefixLen); // [totalQ, Hq, Dv]
            NDArray out;
            NDArray lse;
            if (prefixLen == 0 || p.getTotalQueries() == 0) {
                out = suffix.getOutput();
                lse = suffix.getLse();
            } else {
                NDList prefix = prefix(q, kShared, vShared, withLse, prefixLen);
                NDList merged = MergeState.mergeState(prefix.get(0), prefix.get(1), suffix.getOutput(),
                        suffix.getLse());
                out = merged.get(0);
                lse = merged.get(1);
            }
            return new AttentionOutput(scope.ret(out), spec.isReturnLse() ? scope.ret(lse) : null);
        }
    }

    /** Attention of every query row over the shared prefix: output [totalQ, Hq, Dv], LSE [totalQ, Hq]. */
    private NDList prefix(NDArray q, NDArray kShared, NDArray vShared, AttentionSpec spec, long prefixLen) {
        AttentionSpec bshd = spec.toBuilder().optLayout(QkvLayout.BSHD).build();
        NDArray k = kShared.expandDims(0); // [1, P, Hkv, D]
        NDArray v = vShared.expandDims(0); // [1, P, Hkv, Dv]
        int batch = qoIndptr.length - 1;
        boolean shared = !spec.hasAlibi();
        for (int b = 0; b < batch && shared; b++) {
            int lq = qoIndptr[b + 1] - qoIndptr[b];
            shared = lq == 0 || MaskRule.coverage(spec, prefixLen + suffixLens[b] - lq, lq, 0, prefixLen)
                    == MaskRule.Coverage.FULL;
        }
        if (shared) {
            // Every query sees the whole prefix with position-free scores: one call, the prefix read once for all.
            AttentionSpec open = bshd.toBuilder().optCausal(false).optWindowBounds(-1, -1).optSinkTokens(0).build();
            AttentionOutput o = Attention.forward(q.expandDims(0), k, v, open, denseBackend);
            return new NDList(o.getOutput().squeeze(0), o.getLse().squeeze(0)); // [totalQ, Hq, Dv], [totalQ, Hq]
        }
        // ALiBi or a mask that cuts the prefix: positions differ per request, one call each.
        NDList outs = new NDList();
        NDList lses = new NDList();
        for (int b = 0; b < batch; b++) {
            int lq = qoIndptr[b + 1] - qoIndptr[b];
            if (lq == 0) {
                continue;
            }
            NDArray qb = q.get(new NDIndex("{}:{}", qoIndptr[b], qoIndptr[b + 1])).expandDims(0); // [1, Lq_b, Hq, D]
            AttentionProblem problem = AttentionProblem.builder(qb, k, v, bshd)
                    .optPositions(prefixLen + suffixLens[b] - lq, 0)
                    .build();
            AttentionOutput o = Attention.forward(problem, denseBackend);
            outs.add(o.getOutput().squeeze(0)); // [Lq_b, Hq, Dv]
            lses.add(o.getLse().squeeze(0)); // [Lq_b, Hq]
        }
        return new NDList(NDArrays.concat(outs, 0), NDArrays.concat(lses, 0));
    }
}
