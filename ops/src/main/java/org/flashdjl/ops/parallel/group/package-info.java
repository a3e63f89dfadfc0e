/**
 * Process groups: {@link org.flashdjl.ops.parallel.group.ProcessGroup} (send/recv blocking, async and batched,
 * all-gather, all-to-all, all-reduce, barrier; every wait bounded by a timeout) and
 * {@link org.flashdjl.ops.parallel.group.LocalProcessGroup} (ranks as threads of one JVM; CPU and CI). The NCCL
 * implementation is in {@code org.flashdjl.ops.parallel.nccl}.
 */
package org.flashdjl.ops.parallel.group;
