package org.flashdjl.ops.parallel;

import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.attention.MaskRule;
import org.flashdjl.ops.attention.QkvLayout;
import org.flashdjl.ops.cuda.DeviceCopy;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.DeviceWorkspace;
import org.flashdjl.ops.cuda.FlashAttention;
import org.flashdjl.ops.parallel.group.ProcessGroupException;
import org.flashdjl.ops.parallel.group.Work;
import org.flashdjl.ops.parallel.nccl.DeviceP2POp;
import org.flashdjl.ops.parallel.nccl.NcclBuffer;
import org.flashdjl.ops.parallel.nccl.NcclProcessGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Ring attention on raw device memory over an {@link NcclProcessGroup}: the flash kernels of
 * {@link FlashAttention} attend each block, the key/value shards travel around the ring on NCCL's non-blocking
 * stream while the current block is computed on the legacy default stream, and the partial (output, LSE) states
 * merge on the device ({@code MergeStateKernel}).
 *
 * <pre>{@code
 * try (DeviceRingAttention ring = new DeviceRingAttention(group, SequenceSharding.ZIGZAG, true)) {
 *     ring.forward(q, k, v, out, lse, AttentionSpec.builder().optCausal(true).optLayout(QkvLayout.BSHD).build());
 * }
 * }</pre>
 *
 * <p>Semantics are {@link ContextParallelAttention}'s (causal bottom-right over the full lengths, GQA, softcap,
 * scale, sliding windows, attention sinks, ALiBi); each rank passes its own shards, cut with the sharding given
 * here. Blocks the mask hides are skipped. A block whose mask is the whole-sequence mask of a plain (all keys
 * visible) or bottom-right causal call runs on those kernels; any other block (windows, sinks and ALiBi, which
 * need global positions, or a causal block off the diagonal when Lq != Lk) is one general-kernel call placed at
 * the block's global positions ({@link FlashAttention.Builder#optPositions}).
 *
 * <p>Blocks of one step are fused where the mask allows (one query piece against contiguous key pieces as one
 * causal or plain call; query pieces with the same visible keys as one plain call), so a zigzag causal rank makes 2
 * kernel calls on the diagonal step and 1 on every other step.
 *
 * <p>Buffers: q, k, v, out and lse are dense contiguous views on the group's device; scratch (the two receive
 * buffers of the double-buffered ring, the fp32 running output, the block output and LSE) is allocated on first use
 * and kept until {@link #close()}. Not thread-safe: one thread drives one rank.
 */
public final class DeviceRingAttention implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(DeviceRingAttention.class);
    private static final int NEG_INF_BITS = Float.floatToIntBits(Float.NEGATIVE_INFINITY);

    /**
     * One flash call of a step: rows {@code [queryStart, queryStart + queryLength)} of this rank's query shard
     * against keys {@code [keyStart, keyStart + keyLength)} of the travelling shard (local offsets).
     *
     * @param queryStart first query row in the shard
     * @param queryLength rows
     * @param keyStart first key in the travelling shard
     * @param keyLength keys
     * @param causal the call is causal (bottom-right, or at the positions when {@code positioned})
     * @param positioned true for a call placed at global positions (the general kernel with the spec's options)
     * @param queryPosition the global position of its first query row (when positioned)
     * @param keyPosition the global index of its first key (when positioned)
     */
    public record BlockCall(long queryStart, long queryLength, long keyStart, long keyLength, boolean causal,
            boolean positioned, long queryPosition, long keyPosition) {

        /**
         * A bottom-right aligned call: plain, or causal with the block's last query and last key at one position.
         *
         * @param queryStart first query row in the shard
         * @param queryLength rows
         * @param keyStart first key in the travelling shard
         * @param keyLength keys
         * @param causal true for the bottom-right causal kernel, false for the plain one
         */
        public BlockCall(long queryStart, long queryLength, long keyStart, long keyLength, boolean causal) {
            this(queryStart, queryLength, keyStart, keyLength, causal, false, 0, 0);
        }

        /**
         * A call at the global positions of a block.
         *
         * @param b the block
         * @param spec the spec
         * @return the call
         */
        static BlockCall at(RingSchedule.Block b, AttentionSpec spec) {
            return new BlockCall(b.queryLocalStart(), b.queryLength(), b.keyLocalStart(), b.keyLength(),
                    spec.isCausal(), true, b.queryPosition(), b.keyPosition());
        }

        /**
         * Builds this call's flash attention: its query rows of the local shard against its keys of the travelling
         * shard, writing a block state; plain or bottom-right causal, or the spec's options at the call's global
         * positions.
         *
         * @param q this rank's query shard, in the spec's layout
         * @param k the travelling key shard
         * @param v the travelling value shard
         * @param out the block output for the call's rows (q's row slice shape)
         * @param lse the block LSE for those rows
         * @param spec the ring's spec
         * @return the built call (not launched)
         */
        public FlashAttention toFlash(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out,
                DeviceTensor lse, AttentionSpec spec) {
            int seqAxis = spec.getLayout().seqAxis();
            FlashAttention.Builder fa = FlashAttention.builder()
                    .setQuery(q.slice(seqAxis, queryStart, queryStart + queryLength))
                    .setKey(k.slice(seqAxis, keyStart, keyStart + keyLength))
                    .setValue(v.slice(seqAxis, keyStart, keyStart + keyLength))
                    .setOutput(out).optLse(lse);
            AttentionSpec.Builder s = spec.toBuilder().optReturnLse(true);
            if (positioned) {
                fa.optPositions(queryPosition, keyPosition);
            } else {
                s.optCausal(causal);
            }
            return fa.setSpec(s.build()).build();
        }
    }

    private final NcclProcessGroup group;
    private final SequenceSharding sharding;
    private final boolean convertToFp32;
    private final DeviceWorkspace workspace;
    private boolean overlap = true;

    /**
     * Creates a ring for one rank.
     *
     * @param group the NCCL group (one rank per GPU)
     * @param sharding how q, k and v are sharded over the ranks
     * @param convertToFp32 keep the running output in fp32 (else in the input dtype, one rounding per step)
     */
    public DeviceRingAttention(NcclProcessGroup group, SequenceSharding sharding, boolean convertToFp32) {
        this.group = Objects.requireNonNull(group, "group");
        this.sharding = Objects.requireNonNull(sharding, "sharding");
        this.convertToFp32 = convertToFp32;
        this.workspace = new DeviceWorkspace(group.device());
    }

    /**
     * Sets whether the next shard's transfer overlaps the current step's compute (default true). False waits for
     * each transfer before computing: the serial baseline the benchmark compares with.
     *
     * @param overlap true to overlap
     */
    public void setOverlap(boolean overlap) {
        this.overlap = overlap;
    }

    /**
     * Computes this rank's output. Every rank calls it with the same spec and its own shards.
     *
     * @param q this rank's queries, bshd [B, Lq_r, Hq, D] or bhsd [B, Hq, Lq_r, D] (the spec's layout), fp16/bf16
     * @param k this rank's keys [B, Lk_r, Hkv, D] / [B, Hkv, Lk_r, D]
     * @param v this rank's values, the shape of k
     * @param out the output, the shape and dtype of q
     * @param lse fp32, the shape of q without its last axis ([B, Lq_r, Hq] / [B, Hq, Lq_r]), natural log, or null
     * @param spec what to compute over the full sequence (causal bottom-right over the full lengths)
     * @throws IllegalArgumentException for bad shapes, dtypes, devices, non-contiguous views, shard lengths that
     *     do not follow the sharding
     * @throws ProcessGroupException when a peer fails or a wait times out
     */
    public void forward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, DeviceTensor lse,
            AttentionSpec spec) {
        Objects.requireNonNull(spec, "spec");
        QkvLayout layout = spec.getLayout();
        int seqAxis = layout.seqAxis();
        DeviceChecks.checkQkv("ring", group, q, k, v, out, lse, layout);
        int world = group.size();
        int rank = group.rank();
        ShardLengths lengths = ShardLengths.gather(group, q.size(seqAxis), k.size(seqAxis));
        long[] lq = lengths.query();
        long[] lk = lengths.key();
        long maxLk = lengths.maxKey();
        RingSchedule schedule = RingSchedule.create(spec, lq, lk, sharding);
        List<List<BlockCall>> plans = new ArrayList<>(world);
        int calls = 0;
        for (int step = 0; step < world; step++) {
            plans.add(plan(schedule.blocks(rank, step), spec));
            calls += plans.get(step).size();
        }
        DeviceDataType dtype = q.getDataType();
        long[] qShape = q.getShape();
        if (calls == 0) { // no local query sees a key
            DeviceCopy.fill16(out, (short) 0);
            if (lse != null) {
                DeviceCopy.fill32(lse, NEG_INF_BITS);
            }
        }
        // convertToFp32: every call writes its own state slab; one merge at the end combines them in fp32 and
        // rounds once. Otherwise: one block slab, merged into out in place after each call (input dtype).
        int slabs = convertToFp32 ? calls : 1;
        long[] slabShape = new long[5];
        slabShape[0] = slabs;
        System.arraycopy(qShape, 0, slabShape, 1, 4);
        DeviceTensor blockOut = workspace.get("blockOut", dtype, slabShape);
        long[] lseShape = java.util.Arrays.copyOf(qShape, 3); // the LSE has q's axes without D
        long[] lseSlabShape = new long[4];
        lseSlabShape[0] = slabs;
        System.arraycopy(lseShape, 0, lseSlabShape, 1, 3);
        DeviceTensor blockLse = workspace.get("blockLse", DeviceDataType.FP32, lseSlabShape);
        DeviceCopy.fill32(blockLse, NEG_INF_BITS); // rows a call does not touch keep weight 0
        DeviceTensor accLse = null;
        if (!convertToFp32 && calls > 0) {
            accLse = lse != null ? lse : workspace.get("accLse", DeviceDataType.FP32, lseShape);
            DeviceCopy.fill16(out, (short) 0); // the empty state: output 0, LSE -inf
            DeviceCopy.fill32(accLse, NEG_INF_BITS);
        }
        DeviceTensor[] recvK = new DeviceTensor[2];
        DeviceTensor[] recvV = new DeviceTensor[2];
        DeviceTensor curK = k;
        DeviceTensor curV = v;
        int next = (rank + 1) % world;
        int prev = (rank - 1 + world) % world;
        int call = 0;
        for (int step = 0; step < world; step++) {
            Work transfer = null;
            DeviceTensor nextK = null;
            DeviceTensor nextV = null;
            if (step < world - 1) {
                int slot = step % 2;
                long[] kvShape = k.getShape();
                kvShape[seqAxis] = maxLk;
                if (recvK[slot] == null) {
                    recvK[slot] = workspace.get("recvK" + slot, dtype, kvShape);
                    recvV[slot] = workspace.get("recvV" + slot, dtype, kvShape);
                }
                kvShape[seqAxis] = lk[schedule.source(rank, step + 1)];
                nextK = DeviceChecks.reshape(recvK[slot], kvShape);
                nextV = DeviceChecks.reshape(recvV[slot], kvShape);
                // Post the next transfer first: it runs on NCCL's stream while this step's blocks are computed.
                transfer = group.batchIsendIrecv(DeviceP2POp.send(NcclBuffer.of(curK), next),
                        DeviceP2POp.send(NcclBuffer.of(curV), next),
                        DeviceP2POp.recv(NcclBuffer.of(nextK), prev),
                        DeviceP2POp.recv(NcclBuffer.of(nextV), prev));
                if (!overlap) {
                    transfer.await();
                }
            }
            if (logger.isTraceEnabled()) {
                logger.trace("ring rank {} step {} (kv of rank {}): {}", rank, step, schedule.source(rank, step),
                        plans.get(step));
            }
            for (BlockCall c : plans.get(step)) {
                long qs = c.queryStart();
                long qe = qs + c.queryLength();
                int slab = convertToFp32 ? call : 0;
                DeviceTensor ob = slab(blockOut, slab).slice(seqAxis, qs, qe);
                DeviceTensor lb = slab(blockLse, slab).slice(seqAxis, qs, qe);
                c.toFlash(q, curK, curV, ob, lb, spec).run(workspace);
                if (!convertToFp32) {
                    DeviceStateMerge.mergeInPlace(out.slice(seqAxis, qs, qe), accLse.slice(seqAxis, qs, qe), ob, lb,
                            layout);
                }
                call++;
            }
            if (transfer != null) {
                transfer.await();
                curK = nextK;
                curV = nextV;
            }
        }
        if (convertToFp32 && calls > 0) {
            DeviceStateMerge.mergeSlabs(blockOut, blockLse, out, lse, layout);
        }
    }

    // Slab i of a [n, ...] contiguous buffer, without the leading axis.
    private static DeviceTensor slab(DeviceTensor t, int i) {
        long[] shape = java.util.Arrays.copyOfRange(t.getShape(), 1, t.rank());
        long[] strides = java.util.Arrays.copyOfRange(t.getStrides(), 1, t.rank());
        return DeviceTensor.fromDevicePointer(t.getAddress() + i * t.stride(0) * t.getDataType().byteSize(), shape,
                strides, t.getDataType(), t.getDevice());
    }

    /**
     * Turns the blocks of one ring step into flash calls. A spec with windows, sinks or ALiBi makes one call per
     * block at its global positions. Otherwise, for each query piece, its visible key pieces are fused into one
     * plain call (all visible) or one bottom-right causal call (when that mask equals the true one on every
     * piece); failing that each block is its own plain or causal call, or a call at its positions (a causal block
     * off the diagonal). Plain calls with the same keys and adjacent query rows are fused too.
     *
     * @param blocks the step's blocks ({@link RingSchedule#blocks}), query piece by query piece
     * @param spec the spec
     * @return the calls
     */
    public static List<BlockCall> plan(List<RingSchedule.Block> blocks, AttentionSpec spec) {
        List<BlockCall> calls = new ArrayList<>();
        if (spec.hasAlibi() || spec.getWindowLeft() >= 0 || spec.getWindowRight() >= 0) {
            for (RingSchedule.Block b : blocks) {
                calls.add(BlockCall.at(b, spec));
            }
            return calls;
        }
        int i = 0;
        while (i < blocks.size()) {
            int j = i;
            while (j < blocks.size() && blocks.get(j).queryPiece() == blocks.get(i).queryPiece()) {
                j++;
            }
            planPiece(blocks.subList(i, j), spec, calls);
            i = j;
        }
        // Plain calls of adjacent query rows against the same keys become one.
        List<BlockCall> fused = new ArrayList<>();
        for (BlockCall c : calls) {
            BlockCall last = fused.isEmpty() ? null : fused.get(fused.size() - 1);
            if (last != null && !last.positioned() && !c.positioned() && !last.causal() && !c.causal()
                    && last.keyStart() == c.keyStart()
                    && last.keyLength() == c.keyLength() && last.queryStart() + last.queryLength() == c.queryStart()) {
                fused.set(fused.size() - 1, new BlockCall(last.queryStart(), last.queryLength() + c.queryLength(),
                        last.keyStart(), last.keyLength(), false));
            } else {
                fused.add(c);
            }
        }
        return fused;
    }

    private static void planPiece(List<RingSchedule.Block> blocks, AttentionSpec spec, List<BlockCall> calls) {
        RingSchedule.Block first = blocks.get(0);
        long qStart = first.queryLocalStart();
        long qLen = first.queryLength();
        boolean contiguous = true;
        boolean allFull = true;
        for (int i = 0; i < blocks.size(); i++) {
            RingSchedule.Block b = blocks.get(i);
            allFull &= b.coverage() == MaskRule.Coverage.FULL;
            if (i > 0) {
                RingSchedule.Block a = blocks.get(i - 1);
                contiguous &= a.keyLocalStart() + a.keyLength() == b.keyLocalStart();
            }
        }
        if (contiguous) {
            long kStart = first.keyLocalStart();
            RingSchedule.Block lastBlock = blocks.get(blocks.size() - 1);
            long kLen = lastBlock.keyLocalStart() + lastBlock.keyLength() - kStart;
            if (allFull) {
                calls.add(new BlockCall(qStart, qLen, kStart, kLen, false));
                return;
            }
            if (causalMatches(blocks, spec, kStart, kLen)) {
                calls.add(new BlockCall(qStart, qLen, kStart, kLen, true));
                return;
            }
        }
        for (RingSchedule.Block b : blocks) {
            if (b.coverage() == MaskRule.Coverage.FULL) {
                calls.add(new BlockCall(qStart, qLen, b.keyLocalStart(), b.keyLength(), false));
            } else if (causalMatches(List.of(b), spec, b.keyLocalStart(), b.keyLength())) {
                calls.add(new BlockCall(qStart, qLen, b.keyLocalStart(), b.keyLength(), true));
            } else {
                calls.add(BlockCall.at(b, spec)); // a causal block off the diagonal (Lq != Lk)
            }
        }
    }

    // Whether a bottom-right causal call of the query piece against keys [kStart, kStart + kLen) (these blocks,
    // contiguous) masks exactly what the spec masks: full blocks must be fully visible under the kernel's rule too,
    // partial ones must sit at the kernel's diagonal offset.
    private static boolean causalMatches(List<RingSchedule.Block> blocks, AttentionSpec spec, long kStart, long kLen) {
        if (!spec.isCausal()) {
            return false;
        }
        for (RingSchedule.Block b : blocks) {
            long shift = kLen - b.queryLength(); // kernel: key j visible from row i iff j <= i + shift
            long off = b.keyLocalStart() - kStart;
            if (b.coverage() == MaskRule.Coverage.FULL) {
                if (off + b.keyLength() - 1 > shift) {
                    return false; // row 0 would not see the whole block
                }
            } else if (off - shift != b.keyPosition() - b.queryPosition()) {
                return false;
            }
        }
        return true;
    }

    /** Frees the scratch buffers (after waiting for the device). The group stays open. */
    @Override
    public void close() {
        workspace.close();
    }
}
