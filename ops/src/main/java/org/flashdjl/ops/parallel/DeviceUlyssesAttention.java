package org.flashdjl.ops.parallel;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceCopy;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.DeviceWorkspace;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.nccl.DeviceP2POp;
import org.flashdjl.ops.parallel.nccl.NcclBuffer;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * DeepSpeed-Ulysses attention on raw device memory over an {@link NcclProcessGroup}: one all-to-all (q, k and v
 * in one NCCL group) turns the sequence shards [B, L_r, H, D] into head shards over the full sequence
 * [B, L, H / w, D] (pieces placed in natural order, so zigzag shards work), the flash kernel attends the full
 * sequence for this rank's heads, and a second all-to-all brings the output (and the LSE) back to sequence shards.
 *
 * <pre>{@code
 * try (DeviceUlyssesAttention u = new DeviceUlyssesAttention(group, SequenceSharding.ZIGZAG)) {
 *     u.forward(q, k, v, out, lse, spec);
 * }
 * }</pre>
 *
 * <p>The local attention sees the whole sequence, so every spec feature of the flash kernels works (causal,
 * windows, sinks, ALiBi with the rank's slopes, softcap, GQA). Query and key/value heads must both divide by the
 * world size. Head slices are packed and unpacked with strided device copies ({@code cuMemcpy2DAsync}) on the
 * legacy default stream; scratch is kept until {@link #close()}. Not thread-safe: one thread drives one rank.
 */
public final class DeviceUlyssesAttention implements AutoCloseable {

    private final NcclProcessGroup group;
    private final SequenceSharding sharding;
    private final DeviceWorkspace workspace;

    /**
     * Creates Ulysses for one rank.
     *
     * @param group the NCCL group
     * @param sharding how q, k and v are sharded along the sequence
     */
    public DeviceUlyssesAttention(NcclProcessGroup group, SequenceSharding sharding) {
        this.group = Objects.requireNonNull(group, "group");
        this.sharding = Objects.requireNonNull(sharding, "sharding");
        this.workspace = new DeviceWorkspace(group.device());
    }

    /**
     * Checks that the heads split over the world.
     *
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param world the world size
     * @throws IllegalArgumentException when Hq does not divide (listing the world sizes that work)
     * @throws UnsupportedOperationException when Hkv does not divide
     */
    public static void checkHeads(int queryHeads, int kvHeads, int world) {
        UlyssesAttention.checkHeads(queryHeads, world);
        if (kvHeads % world != 0) {
            throw new UnsupportedOperationException("ulysses on GPU splits the key/value heads over the ranks: "
                    + kvHeads + " kv heads do not divide by world size " + world + " (replicating kv heads is done"
                    + " only by the NDArray path); use Method.RING, or a world size dividing " + kvHeads);
        }
    }

    /**
     * Computes this rank's output. Every rank calls it with the same spec and its own shards.
     *
     * @param q this rank's queries, bshd [B, Lq_r, Hq, D] or bhsd [B, Hq, Lq_r, D] (the spec's layout), fp16/bf16
     * @param k this rank's keys [B, Lk_r, Hkv, D] / [B, Hkv, Lk_r, D]
     * @param v this rank's values, the shape of k
     * @param out the output, the shape and dtype of q
     * @param lse fp32, q's shape without D ([B, Lq_r, Hq] / [B, Hq, Lq_r]), or null
     * @param spec what to compute over the full sequence
     * @throws IllegalArgumentException for bad inputs or heads that do not divide by the world size
     * @throws ProcessGroupException when a peer fails or a wait times out
     */
    public void forward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, DeviceTensor lse,
            AttentionSpec spec) {
        Objects.requireNonNull(spec, "spec");
        QkvLayout layout = spec.getLayout();
        int seqAxis = layout.seqAxis();
        int headAxis = layout.headAxis();
        DeviceChecks.checkQkv("ulysses", group, q, k, v, out, lse, layout);
        int world = group.size();
        int rank = group.rank();
        int hq = (int) q.size(headAxis);
        int hkv = (int) k.size(headAxis);
        checkHeads(hq, hkv, world);
        ShardLengths lengths = ShardLengths.gather(group, q.size(seqAxis), k.size(seqAxis));
        long[] lq = lengths.query();
        long[] lk = lengths.key();
        long totalQ = lengths.totalQuery();
        long totalK = lengths.totalKey();
        List<List<SequenceSharding.Piece>> qLayout = sharding.layout("query", lq);
        List<List<SequenceSharding.Piece>> kLayout = sharding.layout("key", lk);
        int hs = hq / world;
        int hks = hkv / world;
        long batch = q.size(0);
        long d = q.size(3);
        DeviceDataType dtype = q.getDataType();
        // this rank's heads over the full sequence, bshd memory
        DeviceTensor qf = workspace.get("q.full", dtype, batch, totalQ, hs, d);
        DeviceTensor kf = workspace.get("k.full", dtype, batch, totalK, hks, d);
        DeviceTensor vf = workspace.get("v.full", dtype, batch, totalK, hks, d);
        DeviceTensor of = workspace.get("o.full", dtype, batch, totalQ, hs, d);
        DeviceTensor lf = bshdLse(lseSlot("lse.full", batch, totalQ, hs, layout), layout); // [B, totalQ, hs] view

        // 1. sequence shards -> head shards (q, k, v in one NCCL group)
        List<DeviceP2POp> ops = new ArrayList<>();
        List<Runnable> unpack = new ArrayList<>();
        toHeads("q", bshd(q, layout), qf, hs, lq, qLayout, ops, unpack);
        toHeads("k", bshd(k, layout), kf, hks, lk, kLayout, ops, unpack);
        toHeads("v", bshd(v, layout), vf, hks, lk, kLayout, ops, unpack);
        exchange(ops, unpack);

        // 2. full-sequence attention of this rank's heads
        AttentionSpec.Builder local = spec.toBuilder().optLayout(QkvLayout.BSHD).optReturnLse(true);
        if (spec.hasAlibi()) {
            local.optAlibiSlopes(Arrays.copyOfRange(spec.getAlibiSlopes(), rank * hs, (rank + 1) * hs));
        }
        FlashAttention.builder().setQuery(qf).setKey(kf).setValue(vf).setOutput(of).optLse(lse == null ? null : lf)
                .setSpec(local.build()).build().run(workspace);

        // 3. head shards -> sequence shards (output and LSE in one NCCL group)
        ops.clear();
        unpack.clear();
        DeviceTensor ob = bshd(out, layout);
        DeviceTensor lb = lse == null ? null : bshdLse(lse, layout); // [B, Lq_r, Hq] view
        for (int j = 0; j < world; j++) {
            // to rank j: its tokens (pieces in shard order), my heads
            List<SequenceSharding.Piece> pieces = qLayout.get(j);
            DeviceTensor mine = ob.slice(2, (long) rank * hs, (long) (rank + 1) * hs);
            DeviceTensor mineLse = lb == null ? null : lb.slice(2, (long) rank * hs, (long) (rank + 1) * hs);
            if (j == rank) {
                for (SequenceSharding.Piece p : pieces) {
                    if (p.length() > 0) {
                        DeviceCopy.copy(seq(of, 1, p.globalStart(), p.length()), seq(mine, 1, p.localStart(),
                                p.length()));
                        if (lse != null) {
                            DeviceCopy.copy(seq(lf, 1, p.globalStart(), p.length()), seq(mineLse, 1, p.localStart(),
                                    p.length()));
                        }
                    }
                }
                continue;
            }
            DeviceTensor send = workspace.get("o.send" + j, dtype, batch, lq[j], hs, d);
            for (SequenceSharding.Piece p : pieces) {
                if (p.length() > 0) {
                    DeviceCopy.copy(seq(of, 1, p.globalStart(), p.length()), seq(send, 1, p.localStart(),
                            p.length()));
                }
            }
            DeviceTensor recv = workspace.get("o.recv" + j, dtype, batch, lq[rank], hs, d);
            ops.add(DeviceP2POp.send(NcclBuffer.of(send), j));
            ops.add(DeviceP2POp.recv(NcclBuffer.of(recv), j));
            int peer = j;
            unpack.add(() -> DeviceCopy.copy(recv, ob.slice(2, (long) peer * hs, (long) (peer + 1) * hs)));
            if (lse != null) {
                DeviceTensor sendLse = lseSlot("lse.send" + j, batch, lq[j], hs, layout);
                DeviceTensor sendView = bshdLse(sendLse, layout);
                for (SequenceSharding.Piece p : pieces) {
                    if (p.length() > 0) {
                        DeviceCopy.copy(seq(lf, 1, p.globalStart(), p.length()), seq(sendView, 1, p.localStart(),
                                p.length()));
                    }
                }
                DeviceTensor recvLse = lseSlot("lse.recv" + j, batch, lq[rank], hs, layout);
                ops.add(DeviceP2POp.send(NcclBuffer.of(sendLse), j));
                ops.add(DeviceP2POp.recv(NcclBuffer.of(recvLse), j));
                unpack.add(() -> DeviceCopy.copy(bshdLse(recvLse, layout),
                        lb.slice(2, (long) peer * hs, (long) (peer + 1) * hs)));
            }
        }
        exchange(ops, unpack);
    }

    // Packs x's head slices for every other rank, places this rank's own slice, and queues the receives.
    private void toHeads(String name, DeviceTensor x, DeviceTensor full, int heads, long[] lens,
            List<List<SequenceSharding.Piece>> layout, List<DeviceP2POp> ops, List<Runnable> unpack) {
        int world = group.size();
        int rank = group.rank();
        long batch = x.size(0);
        long d = x.size(3);
        for (int j = 0; j < world; j++) {
            DeviceTensor slice = x.slice(2, (long) j * heads, (long) (j + 1) * heads); // [B, L_r, heads, D]
            if (j == rank) {
                for (SequenceSharding.Piece p : layout.get(rank)) {
                    if (p.length() > 0) {
                        DeviceCopy.copy(seq(slice, 1, p.localStart(), p.length()), seq(full, 1, p.globalStart(),
                                p.length()));
                    }
                }
                continue;
            }
            DeviceTensor send = workspace.get(name + ".send" + j, x.getDataType(), batch, lens[rank], heads, d);
            DeviceCopy.copy(slice, send);
            DeviceTensor recv = workspace.get(name + ".recv" + j, x.getDataType(), batch, lens[j], heads, d);
            ops.add(DeviceP2POp.send(NcclBuffer.of(send), j));
            ops.add(DeviceP2POp.recv(NcclBuffer.of(recv), j));
            List<SequenceSharding.Piece> pieces = layout.get(j);
            unpack.add(() -> {
                for (SequenceSharding.Piece p : pieces) {
                    if (p.length() > 0) {
                        DeviceCopy.copy(seq(recv, 1, p.localStart(), p.length()), seq(full, 1, p.globalStart(),
                                p.length()));
                    }
                }
            });
        }
    }

    private void exchange(List<DeviceP2POp> ops, List<Runnable> unpack) {
        if (!ops.isEmpty()) {
            group.batchIsendIrecv(ops.toArray(new DeviceP2POp[0])).await();
        }
        for (Runnable r : unpack) {
            r.run();
        }
    }

    // A bshd-ordered view [B, L, H, D] of a tensor in the layout.
    private static DeviceTensor bshd(DeviceTensor x, QkvLayout layout) {
        return layout == QkvLayout.BSHD ? x : x.permute(0, 2, 1, 3);
    }

    // A [B, L, H]-ordered view of an LSE laid out like its output ([B, L, H] / [B, H, L]).
    private static DeviceTensor bshdLse(DeviceTensor lse, QkvLayout layout) {
        return layout == QkvLayout.BSHD ? lse : lse.permute(0, 2, 1);
    }

    // A contiguous LSE scratch slot for `len` tokens and `heads` heads in the layout's order.
    private DeviceTensor lseSlot(String name, long batch, long len, long heads, QkvLayout layout) {
        return layout == QkvLayout.BSHD ? workspace.get(name, DeviceDataType.FP32, batch, len, heads)
                : workspace.get(name, DeviceDataType.FP32, batch, heads, len);
    }

    private static DeviceTensor seq(DeviceTensor x, int axis, long start, long length) {
        return x.slice(axis, start, start + length);
    }

    /** Frees the scratch buffers (after waiting for the device). The group stays open. */
    @Override
    public void close() {
        workspace.close();
    }
}
