/**
 * Context parallelism: process groups and attention over a sequence sharded across ranks.
 *
 * <ul>
 *   <li>{@link org.flashdjl.ops.parallel.ProcessGroup}: send/recv (blocking, async, batched), all-gather,
 *       all-to-all, all-reduce, barrier; every wait bounded by a timeout. Implementations:
 *       {@link org.flashdjl.ops.parallel.LocalProcessGroup} (ranks as threads of one JVM; CPU and CI) and
 *       {@link org.flashdjl.ops.parallel.NcclProcessGroup} (NCCL through JNA, one GPU per rank).
 *   <li>{@link org.flashdjl.ops.parallel.Distributed#init()}: boots a group from RANK, WORLD_SIZE, LOCAL_RANK,
 *       MASTER_ADDR, MASTER_PORT in one call.
 *   <li>{@link org.flashdjl.ops.parallel.ContextParallelAttention}: ring (zigzag causal balance, transfer/compute
 *       overlap, LSE merging) and Ulysses (all-to-all to head shards) over any local attention backend;
 *       {@link org.flashdjl.ops.parallel.ContextParallel} shards and gathers sequences;
 *       {@link org.flashdjl.ops.parallel.RingSchedule} is the ring's plan.
 * </ul>
 *
 * <p>See {@code docs/CONTEXT_PARALLEL.md}.
 */
package org.flashdjl.ops.parallel;
