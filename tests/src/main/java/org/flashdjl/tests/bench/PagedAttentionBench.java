package org.flashdjl.tests.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.kvcache.paged.PagedKvCache;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cascade.SharedPrefixBatchDecode;
import org.flashdjl.ops.paged.PagedAttention;
import org.flashdjl.ops.paged.PagedPlan;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.Locale;

/**
 * CPU timings of the NDArray paged path (small sizes that run in seconds on 2 cores): paged decode against the
 * contiguous {@link Attention} on the same K/V, planned (plan once, forward per layer) and one-shot; and the
 * shared-prefix cascade decode against plain paged decode over prefix + suffix pages shared by fork.
 *
 * <p>Run: {@code mvn -q -B -o -pl tests -am test-compile -DskipTests dependency:build-classpath
 * -Dmdep.outputFile=target/cp.txt -Dmdep.includeScope=test && java
 * -cp "$(cat tests/target/cp.txt):tests/target/classes" -Dai.djl.offline=true
 * org.flashdjl.tests.bench.PagedAttentionBench [iterations]}. Each figure is the median of {@code iterations}
 * timed calls (one layer each) after as many warm-up calls, the compared variants interleaved call by call; with
 * {@code -Dbench.fast=true}, the mean of the fastest quarter (steadier on a machine shared with other jobs).
 */
public final class PagedAttentionBench {

    private static final Logger logger = LoggerFactory.getLogger(PagedAttentionBench.class);

    private static final int HQ = 16;
    private static final int HKV = 4;
    private static final int D = 64;
    private static final int PAGE = 16;

    private PagedAttentionBench() {}

    /** A timed body. */
    private interface Body {
        void run();
    }

    /**
     * Runs the benchmark.
     *
     * @param args optional iteration count (default 30)
     */
    public static void main(String[] args) {
        int iterations = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
        System.out.println("# paged attention, CPU (NDArray gather backend), Hq=" + HQ + " Hkv=" + HKV + " D=" + D
                + " page=" + PAGE + " fp32 causal; " + (Boolean.getBoolean("bench.fast") ? "fastest-quarter mean"
                : "median") + " ms per layer call over " + iterations + " calls");
        try (NDManager m = NDManager.newBaseManager()) {
            decode(m, spec, iterations, 8, 512, false);
            decode(m, spec, iterations, 8, 512, true);
            decode(m, spec, iterations, 32, 256, false);
            cascade(m, spec, iterations, 8, 1024, 64);
            cascade(m, spec, iterations, 32, 2048, 32);
        }
    }

    private static void decode(NDManager m, AttentionSpec spec, int iterations, int batch, int length,
            boolean mixed) {
        int[] lens = new int[batch];
        for (int b = 0; b < batch; b++) {
            lens[b] = mixed ? length / 2 + (b * length) / batch : length;
        }
        int pages = Arrays.stream(lens).map(l -> (l + PAGE - 1) / PAGE).sum() + 4;
        try (PagedKvCache cache = PagedKvCache.builder().setNumPages(pages).setPageSize(PAGE).setKvHeads(HKV)
                .setHeadDim(D).build()) {
            long[] ids = new long[batch];
            NDArray[] ks = new NDArray[batch];
            NDArray[] vs = new NDArray[batch];
            for (int b = 0; b < batch; b++) {
                ids[b] = cache.addSequence();
                ks[b] = m.randomNormal(new Shape(lens[b], HKV, D));
                vs[b] = m.randomNormal(new Shape(lens[b], HKV, D));
                cache.append(ids[b], ks[b], vs[b]);
            }
            NDArray q = m.randomNormal(new Shape(batch, HQ, D));
            NDArray kp = cache.getKeyPages(0);
            NDArray vp = cache.getValuePages(0);
            String label = "decode B=" + batch + " L=" + (mixed ? length / 2 + ".." + (length / 2 + length
                    - length / batch) : String.valueOf(length));
            AttentionSpec bshd = spec.toBuilder().optLayout(QkvLayout.BSHD).build();
            Body contiguous;
            if (!mixed) {
                NDArray k = NDArrays.stack(new NDList(ks), 0); // [B, L, Hkv, D]
                NDArray v = NDArrays.stack(new NDList(vs), 0); // [B, L, Hkv, D]
                NDArray q4 = q.expandDims(1); // [B, 1, Hq, D]
                contiguous = () -> Attention.forward(q4, k, v, bshd).close();
            } else {
                contiguous = () -> {
                    for (int b = 0; b < batch; b++) {
                        Attention.forward(q.get(b).expandDims(0).expandDims(0), ks[b].expandDims(0),
                                vs[b].expandDims(0), bshd).close();
                    }
                };
            }
            try (PagedPlan plan = PagedPlan.builder(cache.pageTable(ids)).setQueryHeads(HQ).setKvHeads(HKV)
                    .setHeadDim(D).optDevice(m.getDevice()).build()) {
                double[] t = time(iterations, contiguous, () -> plan.forward(q, kp, vp, spec).close(),
                        () -> PagedAttention.decode(q, kp, vp, cache.pageTable(ids), spec).close());
                report(label, "contiguous Attention" + (mixed ? " (per sequence)" : " (batched)"), t[0],
                        "paged planned", t[1], "paged one-shot", t[2]);
            }
        }
    }

    private static void cascade(NDManager m, AttentionSpec spec, int iterations, int batch, int prefix,
            int suffix) {
        int pages = (prefix + PAGE - 1) / PAGE + batch * ((suffix + PAGE - 1) / PAGE + 1) + 4;
        try (PagedKvCache full = PagedKvCache.builder().setNumPages(pages).setPageSize(PAGE).setKvHeads(HKV)
                .setHeadDim(D).build();
                PagedKvCache unique = PagedKvCache.builder().setNumPages(pages).setPageSize(PAGE).setKvHeads(HKV)
                        .setHeadDim(D).build()) {
            NDArray kShared = m.randomNormal(new Shape(prefix, HKV, D));
            NDArray vShared = m.randomNormal(new Shape(prefix, HKV, D));
            long root = full.addSequence();
            full.append(root, kShared, vShared);
            long[] fullIds = new long[batch];
            long[] suffixIds = new long[batch];
            for (int b = 0; b < batch; b++) {
                int s = suffix / 2 + (b * suffix) / batch; // mixed suffix lengths
                NDArray k = m.randomNormal(new Shape(s, HKV, D));
                NDArray v = m.randomNormal(new Shape(s, HKV, D));
                fullIds[b] = full.fork(root); // prefix pages shared by reference count
                full.append(fullIds[b], k, v);
                suffixIds[b] = unique.addSequence();
                unique.append(suffixIds[b], k, v);
            }
            NDArray q = m.randomNormal(new Shape(batch, HQ, D));
            try (PagedPlan plan = PagedPlan.builder(full.pageTable(fullIds)).setQueryHeads(HQ).setKvHeads(HKV)
                    .setHeadDim(D).optDevice(m.getDevice()).build();
                    SharedPrefixBatchDecode wrapper = new SharedPrefixBatchDecode()) {
                wrapper.beginForward(unique.pageTable(suffixIds), HQ, HKV, D, m.getDevice());
                double[] t = time(iterations,
                        () -> plan.forward(q, full.getKeyPages(0), full.getValuePages(0), spec).close(),
                        () -> wrapper.forward(q, kShared, vShared, unique.getKeyPages(0), unique.getValuePages(0),
                                spec).close());
                wrapper.endForward();
                report("cascade decode B=" + batch + " P=" + prefix + " S=" + suffix / 2 + ".."
                        + (suffix / 2 + suffix - suffix / batch), "plain paged (prefix pages shared by fork)", t[0],
                        "shared-prefix cascade", t[1], null, 0);
            }
        }
    }

    // Times the bodies interleaved (one call of each per round), so load spikes on a shared machine hit all alike.
    private static double[] time(int iterations, Body... bodies) {
        double[][] ms = new double[bodies.length][iterations];
        for (int round = -iterations; round < iterations; round++) { // negative rounds warm up
            for (int i = 0; i < bodies.length; i++) {
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    long t0 = System.nanoTime();
                    bodies[i].run();
                    if (round >= 0) {
                        ms[i][round] = (System.nanoTime() - t0) / 1e6;
                    }
                }
            }
        }
        double[] result = new double[bodies.length];
        for (int i = 0; i < bodies.length; i++) {
            Arrays.sort(ms[i]);
            // the median, unless the machine is shared: then the fastest quarter's mean is the steadier figure
            double fastQuarter = Arrays.stream(ms[i], 0, Math.max(1, iterations / 4)).average().orElse(ms[i][0]);
            result[i] = Boolean.getBoolean("bench.fast") ? fastQuarter : ms[i][iterations / 2];
        }
        return result;
    }

    private static void report(String label, String aName, double a, String bName, double b, String cName,
            double c) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%-34s %s %.3f ms | %s %.3f ms (x%.2f)",
                label, aName, a, bName, b, a / b));
        if (cName != null) {
            sb.append(String.format(Locale.ROOT, " | %s %.3f ms (x%.2f)", cName, c, a / c));
        }
        System.out.println(sb);
        logger.debug("{}", sb);
    }
}
