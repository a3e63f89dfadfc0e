package org.flashdjl.ops.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;

import org.flashdjl.ops.OpScope;
import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * DeepSpeed-Ulysses attention over NDArrays: an all-to-all turns sequence shards [B, L/w, H, D] into head shards
 * [B, L, H/w, D], every rank runs ordinary attention over the full sequence for its heads with any local backend,
 * and a second all-to-all turns the output back into sequence shards.
 *
 * <p>Query heads must divide by the world size. Key/value heads that do not (GQA with fewer KV heads than ranks,
 * or not a multiple) are replicated to {@code lcm(Hkv, world)} heads first (repeat-interleave, which keeps query
 * head {@code h} reading kv head {@code h / (Hq / Hkv)}); {@code lcm(Hkv, world)} divides Hq whenever world and Hkv
 * do. ALiBi slopes are sliced so each rank uses its own heads' slopes.
 */
final class UlyssesAttention {

    private static final Logger logger = LoggerFactory.getLogger(UlyssesAttention.class);

    private UlyssesAttention() {}

    /**
     * Checks that Ulysses can split the heads over the world.
     *
     * @param queryHeads Hq
     * @param world the world size
     * @throws IllegalArgumentException listing the world sizes that work
     */
    static void checkHeads(int queryHeads, int world) {
        if (queryHeads % world != 0) {
            List<Integer> ok = new ArrayList<>();
            for (int w = 1; w <= queryHeads; w++) {
                if (queryHeads % w == 0) {
                    ok.add(w);
                }
            }
            throw new IllegalArgumentException("ulysses splits the query heads over the ranks: " + queryHeads
                    + " query heads do not divide by world size " + world + "; world sizes that work with "
                    + queryHeads + " heads: " + ok + ". Use method RING for any head count.");
        }
    }

    /**
     * Returns how many times each key/value head is repeated so that the kv heads divide by the world size.
     *
     * @param kvHeads Hkv
     * @param world the world size
     * @return {@code world / gcd(Hkv, world)}, 1 when no replication is needed
     */
    static int kvReplication(int kvHeads, int world) {
        return world / gcd(kvHeads, world);
    }

    /**
     * Runs Ulysses.
     *
     * @param group the group (size >= 2)
     * @param q local query shard in the spec's layout
     * @param k local key shard
     * @param v local value shard
     * @param spec the spec, layout already set
     * @param backend the local backend name
     * @param sharding how the shards were cut
     * @return local output (and its LSE, [B, Hq, Lq_local] / [B, Lq_local, Hq], when the spec asks)
     */
    static AttentionOutput forward(ProcessGroup group, NDArray q, NDArray k, NDArray v, AttentionSpec spec,
            String backend, SequenceSharding sharding) {
        QkvLayout layout = spec.getLayout();
        int seqAxis = layout.seqAxis();
        int headAxis = layout.headAxis();
        int world = group.size();
        int rank = group.rank();
        int hq = (int) q.getShape().get(headAxis);
        int hkv = (int) k.getShape().get(headAxis);
        checkHeads(hq, world);
        ShardLengths lengths = ShardLengths.gather(group, q.getShape().get(seqAxis), k.getShape().get(seqAxis));
        long[] lq = lengths.query();
        long[] lk = lengths.key();
        List<List<SequenceSharding.Piece>> qLayout = sharding.layout("query", lq);
        List<List<SequenceSharding.Piece>> kLayout = sharding.layout("key", lk);
        int rep = kvReplication(hkv, world);
        if (rep > 1) {
            logger.debug("ulysses: replicating {} kv heads x{} to {} for world size {}", hkv, rep, hkv * rep, world);
        }
        int headsPerRank = hq / world;
        AttentionSpec.Builder local = spec.toBuilder();
        if (spec.hasAlibi()) {
            float[] slopes = spec.getAlibiSlopes();
            local.optAlibiSlopes(Arrays.copyOfRange(slopes, rank * headsPerRank, (rank + 1) * headsPerRank));
        }
        AttentionSpec localSpec = local.build();
        try (OpScope scope = new OpScope()) {
            NDArray kr = rep > 1 ? k.repeat(headAxis, rep) : k; // [.., Hkv * rep, ..]
            NDArray vr = rep > 1 ? v.repeat(headAxis, rep) : v;
            NDArray qFull = toHeadShards(group, q, seqAxis, headAxis, qLayout); // [B, Hq/w | Lq, Lq | Hq/w, D]
            NDArray kFull = toHeadShards(group, kr, seqAxis, headAxis, kLayout);
            NDArray vFull = toHeadShards(group, vr, seqAxis, headAxis, kLayout);
            AttentionOutput o = Attention.forward(qFull, kFull, vFull, localSpec, backend);
            NDArray out = toSeqShards(group, o.getOutput(), seqAxis, headAxis, qLayout, rank);
            if (!spec.isReturnLse()) {
                return new AttentionOutput(scope.ret(out), null);
            }
            // the LSE has the output's axes without Dv: [B, Hq, Lq_local] / [B, Lq_local, Hq]
            NDArray lse = toSeqShards(group, o.getLse(), seqAxis, headAxis, qLayout, rank);
            return new AttentionOutput(scope.ret(out), scope.ret(lse));
        }
    }

    // Sequence shard [.., L_r, H, ..] -> this rank's heads over the full sequence [.., L, H / w, ..], natural order.
    private static NDArray toHeadShards(ProcessGroup group, NDArray x, int seqAxis, int headAxis,
            List<List<SequenceSharding.Piece>> layout) {
        NDList chunks = x.split(group.size(), headAxis);
        NDArray[] got = group.allToAll(chunks.toArray(new NDArray[0])); // got[j]: rank j's tokens, my heads
        return ContextParallel.cat(ContextParallel.naturalOrder(got, seqAxis, layout), seqAxis);
    }

    // This rank's heads over the full sequence -> sequence shard with all heads [.., L_r, H, ..].
    private static NDArray toSeqShards(ProcessGroup group, NDArray y, int seqAxis, int headAxis,
            List<List<SequenceSharding.Piece>> layout, int rank) {
        NDArray[] chunks = new NDArray[group.size()];
        for (int j = 0; j < group.size(); j++) {
            NDList parts = new NDList();
            for (SequenceSharding.Piece p : layout.get(j)) {
                if (p.length() > 0) {
                    parts.add(ContextParallel.slice(y, seqAxis, p.globalStart(), p.length()));
                }
            }
            chunks[j] = parts.isEmpty()
                    ? y.getManager().zeros(RingAttention.withAxis(y.getShape(), seqAxis, 0), y.getDataType(),
                            y.getDevice())
                    : ContextParallel.cat(parts, seqAxis);
        }
        NDArray[] got = group.allToAll(chunks); // got[j]: my tokens, rank j's heads
        return NDArrays.concat(new NDList(got), headAxis);
    }

    private static int gcd(int a, int b) {
        return b == 0 ? a : gcd(b, a % b);
    }
}
