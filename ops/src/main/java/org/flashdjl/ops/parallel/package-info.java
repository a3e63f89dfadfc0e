/**
 * Context parallelism: attention over a sequence sharded across the ranks of a process group.
 *
 * <ul>
 *   <li>{@link org.flashdjl.ops.parallel.ContextParallelAttention}: ring (zigzag causal balance, transfer/compute
 *       overlap, LSE merging) and Ulysses (all-to-all to head shards) over any local attention backend, and on
 *       device memory over NCCL ({@link org.flashdjl.ops.parallel.DeviceRingAttention},
 *       {@link org.flashdjl.ops.parallel.DeviceUlyssesAttention});
 *       {@link org.flashdjl.ops.parallel.ContextParallel} shards and gathers sequences;
 *       {@link org.flashdjl.ops.parallel.RingSchedule} is the ring's plan.
 *   <li>{@link org.flashdjl.ops.parallel.group}: the process-group abstraction and its in-JVM implementation.
 *   <li>{@link org.flashdjl.ops.parallel.nccl}: the NCCL process group (one GPU per rank), rendezvous and
 *       {@code Distributed.init()}.
 * </ul>
 *
 * <p>See {@code docs/CONTEXT_PARALLEL.md}.
 */
package org.flashdjl.ops.parallel;
