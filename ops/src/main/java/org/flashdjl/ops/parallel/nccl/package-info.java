/**
 * The NCCL process group ({@code libnccl.so.2} through JNA, one GPU per rank) on the CUDA runtime of
 * {@code org.flashdjl.ops.cuda}: {@link org.flashdjl.ops.parallel.nccl.NcclProcessGroup} (raw collectives on
 * {@link org.flashdjl.ops.parallel.nccl.NcclBuffer}s and the NDArray collectives; its communicator lifecycle,
 * streams and events, bounded waits and NDArray conversion live in package-private parts),
 * {@link org.flashdjl.ops.parallel.nccl.NcclRendezvous} (the unique-id exchange) and
 * {@link org.flashdjl.ops.parallel.nccl.Distributed#init()} (a group from RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR, MASTER_PORT in one call).
 */
package org.flashdjl.ops.parallel.nccl;
