package org.flashdjl.ops.parallel.group;

/** The reductions of {@link ProcessGroup#allReduce}; the NCCL codes are {@code ncclRedOp_t} values. */
public enum ReduceOp {
    /** Element-wise sum ({@code ncclSum = 0}). */
    SUM(0),
    /** Element-wise maximum ({@code ncclMax = 2}). */
    MAX(2);

    private final int ncclCode;

    ReduceOp(int ncclCode) {
        this.ncclCode = ncclCode;
    }

    /**
     * Returns the {@code ncclRedOp_t} value.
     *
     * @return 0 for sum, 2 for max
     */
    public int ncclCode() {
        return ncclCode;
    }
}
