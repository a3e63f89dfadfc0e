package org.flashdjl.ops.parallel;

import org.flashdjl.ops.parallel.group.ProcessGroup;

/**
 * The query and key shard lengths of every rank, gathered with one {@code allGatherLongs} at the start of a
 * context-parallel forward: the one place the ring and Ulysses (NDArray and device paths) learn them. The sharding
 * checks them when it lays the shards out ({@link SequenceSharding#layout}).
 *
 * @param query Lq of each rank's query shard, by rank
 * @param key Lk of each rank's key shard, by rank
 */
record ShardLengths(long[] query, long[] key) {

    /**
     * Gathers the lengths of every rank (a collective: every rank calls it).
     *
     * @param group the group
     * @param localQuery this rank's query shard length
     * @param localKey this rank's key shard length
     * @return the lengths by rank
     */
    static ShardLengths gather(ProcessGroup group, long localQuery, long localKey) {
        int world = group.size();
        long[] lens = group.allGatherLongs(localQuery, localKey);
        long[] lq = new long[world];
        long[] lk = new long[world];
        for (int r = 0; r < world; r++) {
            lq[r] = lens[2 * r];
            lk[r] = lens[2 * r + 1];
        }
        return new ShardLengths(lq, lk);
    }

    /** @return the longest key shard */
    long maxKey() {
        long m = 0;
        for (long x : key) {
            m = Math.max(m, x);
        }
        return m;
    }

    /** @return the full query length */
    long totalQuery() {
        long t = 0;
        for (long x : query) {
            t += x;
        }
        return t;
    }

    /** @return the full key length */
    long totalKey() {
        long t = 0;
        for (long x : key) {
            t += x;
        }
        return t;
    }
}
