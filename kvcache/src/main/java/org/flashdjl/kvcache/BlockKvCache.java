package org.flashdjl.kvcache;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.Checks;
import org.flashdjl.ops.OpScope;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.Objects;

/**
 * A streaming key/value cache of fixed size for causal attention: sink tokens plus a local window,
 * fed one chunk of {@code chunkSize} tokens at a time (docs/SEMANTICS.md, "BlockKvCache").
 *
 * <h2>Layout</h2>
 *
 * Keys and values may have any shape; the sequence dimension is {@code seqDim} (negative counts
 * from the end). Along it the cache holds {@code total = sinkSize + windowSize} slots laid out as
 * {@code [sink tokens | local window]}:
 *
 * <ul>
 *   <li>the sinks are the first {@code sinkSize} tokens of the stream and are never evicted;
 *   <li>the local window holds the most recent {@code windowSize} tokens, oldest first.
 * </ul>
 *
 * Chunks do not overlap: chunk {@code i} (its {@code chunkIdx}, counted in the full stream, not in
 * the cache) holds the stream tokens {@code [i * chunkSize, (i + 1) * chunkSize)}. {@code total}
 * must be a multiple of {@code chunkSize}, and {@code windowSize >= chunkSize}. The sinks need not
 * be a multiple of the chunk size: they simply arrive as the first tokens of the first chunk(s).
 *
 * <h2>Phases</h2>
 *
 * <ul>
 *   <li><b>Filling</b> ({@link #cachedLength()} {@code < total}): each new chunk is written right
 *       after the previous one, so slot {@code s} holds stream token {@code s}; {@link #cachedK()}
 *       returns the valid prefix only.
 *   <li><b>Steady state</b> (the cache is full): {@link #beforeUpdate(long)} of a new chunk rolls
 *       the local window part {@code [sinkSize, total)} left by {@code chunkSize} (the oldest
 *       window tokens fall out, the sinks stay), and {@link #update(NDArray, NDArray)} writes the
 *       chunk at the last {@code chunkSize} slots; {@link #cachedK()} returns the full buffer.
 * </ul>
 *
 * <h2>Per step</h2>
 *
 * <pre>{@code
 * cache.beforeUpdate(chunkIdx);       // roll the window if steady and chunkIdx is new
 * cache.update(k, v);                 // k: key shape with chunkSize at seqDim
 * NDArray keys = cache.cachedK();     // attend over these (the new chunk included)
 * NDArray values = cache.cachedV();
 * cache.afterUpdate(chunkIdx);        // bookkeeping
 * }</pre>
 *
 * {@code chunkIdx} must be {@code 0} for the first chunk and then either the previous index plus
 * one (a new chunk) or the previous index again, which overwrites the slots the previous chunk was
 * written to, without rolling. The calls must come in exactly that order; anything else throws an
 * {@link IllegalStateException} naming the expected call. A skipped or decreasing {@code chunkIdx},
 * or a chunk of the wrong shape, dtype or device throws an {@link IllegalArgumentException}. Every
 * argument and the call order are checked before anything is written, so a rejected call leaves the
 * cache exactly as it was.
 *
 * <p><b>Repeating the chunk that filled the cache.</b> The phase is a function of the number of
 * valid slots only: once the chunk that reaches {@code total} slots has been committed by {@link
 * #afterUpdate(long)}, the cache is in steady state. Repeating that same {@code chunkIdx} is a
 * steady-state overwrite without a roll: it writes the last {@code chunkSize} slots, which are
 * exactly the slots that chunk filled, so the result is the same as overwriting it while filling.
 * The next new {@code chunkIdx} then rolls.
 *
 * <h2>Buffers</h2>
 *
 * The key and value buffers (and, when {@code windowSize > 2 * chunkSize}, a scratch buffer of
 * {@code windowSize - chunkSize} slots each for the roll) are allocated once, by an {@link
 * NDManager} the cache creates as a sub-manager of the one given to it, and never reallocated:
 * {@link #keyBuffer()} and {@link #valueBuffer()} keep the same native storage for the cache's
 * lifetime, so a kernel or a captured graph can hold their addresses. A step allocates no device
 * memory; its only allocations are the small native view handles DJL needs (none in steady state).
 *
 * <p><b>The roll.</b> PyTorch's {@code copy_} refuses (or, for strided views, may silently
 * corrupt) a copy whose source and destination overlap, which a left shift of the window does. The
 * roll therefore copies {@code window[chunkSize:]} into the scratch buffer and then the scratch back
 * to {@code window[:windowSize - chunkSize]}: two copies of {@code windowSize - chunkSize} slots per
 * key and value. When {@code windowSize <= 2 * chunkSize} the two ranges are disjoint and a single
 * direct copy is made (no scratch); when {@code windowSize == chunkSize} nothing moves. The cost of
 * a step therefore depends on the window, never on how many tokens have been streamed.
 *
 * <h2>Positions and RoPE</h2>
 *
 * {@link #tokenPositions()} gives, for every valid slot in cache order, the index of the stream
 * token it holds (sinks {@code 0 .. sinkSize-1}, then the window). A model applies rotary
 * embeddings in one of two ways:
 *
 * <ul>
 *   <li><b>Original positions</b>: rotate each chunk's keys with their stream positions ({@code
 *       chunkIdx * chunkSize + t}) before {@link #update(NDArray, NDArray)} and the queries the
 *       same way; the cached keys are then already rotated, and {@link #tokenPositions()} tells
 *       which absolute positions they carry.
 *   <li><b>In-cache positions</b> (StreamingLLM): store un-rotated keys, and at every step rotate
 *       {@link #cachedK()} with the slot indices {@code 0 .. cachedLength()-1}; the new chunk's
 *       queries use the slots they were written to, {@code cachedLength() - chunkSize + t}. Keys
 *       are re-rotated every step, so relative distances stay bounded by the cache size however
 *       long the stream gets.
 * </ul>
 *
 * <p>Arrays returned by {@link #cachedK()}, {@link #cachedV()}, {@link #keyBuffer()} and {@link
 * #valueBuffer()} are views owned by the cache: do not close them. Full-size views stay valid until
 * the cache is closed; a filling-phase prefix view stays valid until the cached length changes. The
 * cache is not thread-safe.
 */
public final class BlockKvCache implements AutoCloseable {

    private static final Logger logger = LoggerFactory.getLogger(BlockKvCache.class);


    /** The call a {@link BlockKvCache} accepts next. */
    public enum Step {
        /** {@link BlockKvCache#beforeUpdate(long)}: between two steps. */
        BEFORE_UPDATE("beforeUpdate(chunkIdx)"),
        /** {@link BlockKvCache#update(NDArray, NDArray)}: after {@code beforeUpdate}. */
        UPDATE("update(k, v)"),
        /** {@link BlockKvCache#afterUpdate(long)}: after {@code update}. */
        AFTER_UPDATE("afterUpdate(chunkIdx)");

        private final String call;

        Step(String call) {
            this.call = call;
        }

        /**
         * Returns the call this step stands for, as written in error messages.
         *
         * @return the call, e.g. {@code "update(k, v)"}
         */
        public String call() {
            return call;
        }
    }

    private final NDManager manager;
    private final Shape keyShape; // cache key shape: [..., sink + window, ...] along seqDim
    private final Shape valueShape; // cache value shape: [..., sink + window, ...] along seqDim
    private final long[] keyChunkDims; // chunk key shape: [..., chunk, ...] along seqDim
    private final long[] valueChunkDims; // chunk value shape: [..., chunk, ...] along seqDim
    private final int seqDim; // normalized to [0, rank)
    private final int chunkSize;
    private final int windowSize;
    private final int sinkSize;
    private final int totalSize; // sink + window
    private final int moveLen; // window - chunk: slots the roll moves
    private final Device device;
    private final DataType dataType;

    private final NDArray kBuf; // [..., sink + window, ...] along seqDim; the key storage
    private final NDArray vBuf; // [..., sink + window, ...] along seqDim; the value storage
    private final NDArray kFull; // [..., sink + window, ...] along seqDim; view of kBuf
    private final NDArray vFull; // [..., sink + window, ...] along seqDim; view of vBuf
    private final NDArray kRollSrc; // [..., window - chunk, ...] along seqDim; view kBuf[sink+chunk:]
    private final NDArray vRollSrc; // [..., window - chunk, ...] along seqDim; view vBuf[sink+chunk:]
    private final NDArray kScratch; // [..., window - chunk, ...] along seqDim; null if not needed
    private final NDArray vScratch; // [..., window - chunk, ...] along seqDim; null if not needed
    private final NDIndex rollDst; // [sink, total - chunk) along seqDim
    private final NDIndex scratchAll; // [0, window - chunk) along seqDim

    private NDArray kPrefix; // [..., kPrefixLen, ...] along seqDim; view of kBuf, filling only
    private NDArray vPrefix; // [..., vPrefixLen, ...] along seqDim; view of vBuf, filling only
    private int kPrefixLen = -1;
    private int vPrefixLen = -1;

    // Bookkeeping (seed: _prev_chunk_idx, _n_cached, _curr_chunk_idx).
    private long lastChunkIdx = -1; // last chunk committed by afterUpdate; -1 when empty
    private int filled; // valid slots as of lastChunkIdx
    private long pendingChunkIdx = -1; // chunk of the step in progress
    private boolean pendingIsNew; // the step in progress appends (true) or overwrites (false)
    private Step expected = Step.BEFORE_UPDATE;
    private RuntimeException broken; // a native failure in the middle of a write, until reset()
    private boolean closed;

    private BlockKvCache(Builder b, NDManager parent) {
        Objects.requireNonNull(parent, "manager");
        if (b.keyShape == null) {
            throw new IllegalArgumentException("BlockKvCache: setKeyShape(..) is required");
        }
        if (b.valueShape == null) {
            throw new IllegalArgumentException("BlockKvCache: setValueShape(..) is required");
        }
        if (b.seqDim == null) {
            throw new IllegalArgumentException("BlockKvCache: setSeqDim(..) is required");
        }
        if (b.chunkSize == null) {
            throw new IllegalArgumentException("BlockKvCache: setChunkSize(..) is required");
        }
        if (b.windowSize == null) {
            throw new IllegalArgumentException("BlockKvCache: setWindowSize(..) is required");
        }
        chunkSize = b.chunkSize;
        windowSize = b.windowSize;
        sinkSize = b.sinkSize;
        if (chunkSize < 1) {
            throw new IllegalArgumentException("BlockKvCache: chunkSize must be >= 1, got " + chunkSize);
        }
        if (sinkSize < 0) {
            throw new IllegalArgumentException("BlockKvCache: sinkSize must be >= 0, got " + sinkSize);
        }
        if (windowSize < chunkSize) {
            throw new IllegalArgumentException(
                    "BlockKvCache: windowSize ("
                            + windowSize
                            + ") must be >= chunkSize ("
                            + chunkSize
                            + "): a new chunk is written into the local window");
        }
        long total = (long) sinkSize + windowSize;
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "BlockKvCache: sinkSize + windowSize = " + total + " is too large");
        }
        totalSize = (int) total;
        if (totalSize % chunkSize != 0) {
            throw new IllegalArgumentException(
                    "BlockKvCache: (sinkSize + windowSize) % chunkSize must be 0, got ("
                            + sinkSize
                            + " + "
                            + windowSize
                            + ") % "
                            + chunkSize
                            + " = "
                            + totalSize % chunkSize);
        }
        moveLen = windowSize - chunkSize;

        int rank = b.keyShape.dimension();
        if (rank < 1) {
            throw new IllegalArgumentException("BlockKvCache: key shape must have rank >= 1");
        }
        if (b.valueShape.dimension() != rank) {
            throw new IllegalArgumentException(
                    "BlockKvCache: key shape "
                            + b.keyShape
                            + " and value shape "
                            + b.valueShape
                            + " must have the same rank");
        }
        if (b.seqDim < -rank || b.seqDim >= rank) {
            throw new IllegalArgumentException(
                    "BlockKvCache: seqDim "
                            + b.seqDim
                            + " is out of range for rank "
                            + rank
                            + " (allowed: "
                            + -rank
                            + " .. "
                            + (rank - 1)
                            + ")");
        }
        seqDim = b.seqDim < 0 ? b.seqDim + rank : b.seqDim;
        keyShape = cacheShape("key", b.keyShape);
        valueShape = cacheShape("value", b.valueShape);
        for (int d = 0; d < rank; d++) {
            boolean lastDim = d == rank - 1 && d != seqDim;
            if (!lastDim && keyShape.get(d) != valueShape.get(d)) {
                throw new IllegalArgumentException(
                        "BlockKvCache: key shape "
                                + b.keyShape
                                + " and value shape "
                                + b.valueShape
                                + " must be equal except in the last dimension; they differ at"
                                + " dimension "
                                + d);
            }
        }
        keyChunkDims = keyShape.getShape().clone(); // Shape.getShape() exposes its array
        keyChunkDims[seqDim] = chunkSize;
        valueChunkDims = valueShape.getShape().clone();
        valueChunkDims[seqDim] = chunkSize;

        dataType = b.dataType == null ? DataType.FLOAT32 : b.dataType;
        Checks.checkDataType("BlockKvCache dataType", dataType, Checks.FLOAT_TYPES);
        device = b.device == null ? parent.getDevice() : b.device;

        manager = parent.newSubManager(device);
        manager.setName("BlockKvCache");
        try {
            kBuf = manager.zeros(keyShape, dataType);
            vBuf = manager.zeros(valueShape, dataType);
            kFull = kBuf.get(NDIndex.sliceAxis(seqDim, 0, totalSize));
            vFull = vBuf.get(NDIndex.sliceAxis(seqDim, 0, totalSize));
            rollDst = NDIndex.sliceAxis(seqDim, sinkSize, totalSize - chunkSize);
            scratchAll = NDIndex.sliceAxis(seqDim, 0, moveLen);
            if (moveLen > 0) {
                kRollSrc = kBuf.get(NDIndex.sliceAxis(seqDim, sinkSize + chunkSize, totalSize));
                vRollSrc = vBuf.get(NDIndex.sliceAxis(seqDim, sinkSize + chunkSize, totalSize));
            } else {
                kRollSrc = null;
                vRollSrc = null;
            }
            if (moveLen > chunkSize) { // source and destination of the roll overlap
                kScratch = manager.zeros(Shape.update(keyShape, seqDim, moveLen), dataType);
                vScratch = manager.zeros(Shape.update(valueShape, seqDim, moveLen), dataType);
            } else {
                kScratch = null;
                vScratch = null;
            }
            OpScope.keepAll(manager); // the buffers outlive any step scope open now
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
        if (logger.isDebugEnabled()) {
            long slots = 2L * totalSize + (kScratch == null ? 0 : 2L * moveLen);
            logger.debug(
                    "BlockKvCache: key {} value {} seqDim {} chunk {} window {} sink {} on {} {};"
                            + " {} slots allocated (roll {})",
                    keyShape,
                    valueShape,
                    seqDim,
                    chunkSize,
                    windowSize,
                    sinkSize,
                    device,
                    dataType,
                    slots,
                    moveLen == 0 ? "none" : kScratch == null ? "direct" : "through scratch");
        }
    }

    private Shape cacheShape(String what, Shape given) {
        long[] dims = given.getShape().clone(); // never modify the caller's Shape
        for (int d = 0; d < dims.length; d++) {
            if (d == seqDim) {
                if (dims[d] != -1 && dims[d] != totalSize) {
                    throw new IllegalArgumentException(
                            "BlockKvCache: "
                                    + what
                                    + " shape "
                                    + given
                                    + " has size "
                                    + dims[d]
                                    + " at seqDim "
                                    + seqDim
                                    + "; it must be the cache length sinkSize + windowSize = "
                                    + totalSize
                                    + " (or -1 to let the cache set it)");
                }
                dims[d] = totalSize;
            } else if (dims[d] < 1) {
                throw new IllegalArgumentException(
                        "BlockKvCache: "
                                + what
                                + " shape "
                                + given
                                + " has a non-positive size at dimension "
                                + d);
            }
        }
        return new Shape(dims);
    }

    /**
     * Creates a builder for a {@link BlockKvCache}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Builds a single-chunk cache pre-filled with the given keys and values: {@code chunkSize =
     * windowSize =} their length along {@code seqDim}, no sinks, chunk {@code 0} committed, so the
     * cache is in steady state. The data are copied; the cache's manager is a sub-manager of
     * {@code k}'s manager, and device and dtype are those of {@code k}.
     *
     * @param k the keys, e.g. {@code [batch, heads, seq, headDim]}
     * @param v the values, same shape as {@code k} except the last dimension
     * @param seqDim the sequence dimension (negative counts from the end)
     * @return the pre-filled cache
     */
    public static BlockKvCache fromTensor(NDArray k, NDArray v, int seqDim) {
        Objects.requireNonNull(k, "k");
        return fromTensor(k.getManager(), k, v, seqDim);
    }

    /**
     * Builds a single-chunk cache pre-filled with the given keys and values, owned by a
     * sub-manager of {@code manager}; see {@link #fromTensor(NDArray, NDArray, int)}.
     *
     * @param manager the parent manager of the cache's manager
     * @param k the keys
     * @param v the values, same shape as {@code k} except the last dimension
     * @param seqDim the sequence dimension (negative counts from the end)
     * @return the pre-filled cache
     */
    public static BlockKvCache fromTensor(NDManager manager, NDArray k, NDArray v, int seqDim) {
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(v, "v");
        int rank = k.getShape().dimension();
        if (seqDim < -rank || seqDim >= rank) {
            throw new IllegalArgumentException(
                    "BlockKvCache.fromTensor: seqDim " + seqDim + " is out of range for " + k.getShape());
        }
        long len = k.getShape().get(seqDim < 0 ? seqDim + rank : seqDim);
        if (len < 1 || len > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "BlockKvCache.fromTensor: k has length " + len + " along seqDim " + seqDim);
        }
        BlockKvCache cache =
                builder()
                        .setKeyShape(k.getShape())
                        .setValueShape(v.getShape())
                        .setSeqDim(seqDim)
                        .setChunkSize((int) len)
                        .setWindowSize((int) len)
                        .optDevice(k.getDevice())
                        .optDataType(k.getDataType())
                        .build(manager);
        try {
            cache.beforeUpdate(0);
            cache.update(k, v);
            cache.afterUpdate(0);
        } catch (RuntimeException e) {
            cache.close();
            throw e;
        }
        return cache;
    }

    /**
     * Prepares the cache for chunk {@code chunkIdx}. A new chunk ({@code chunkIdx ==
     * lastChunkIdx() + 1}) in steady state rolls the local window left by {@code chunkSize}; in the
     * filling phase, or when {@code chunkIdx == lastChunkIdx()} (an overwrite), nothing moves.
     *
     * @param chunkIdx the chunk's index in the full stream: {@code lastChunkIdx()} or {@code
     *     lastChunkIdx() + 1} ({@code 0} for the first chunk)
     * @throws IllegalStateException if {@link #expectedStep()} is not {@link Step#BEFORE_UPDATE}
     * @throws IllegalArgumentException if {@code chunkIdx} skips ahead or goes back
     */
    public void beforeUpdate(long chunkIdx) {
        checkUsable();
        checkStep(Step.BEFORE_UPDATE, "beforeUpdate(" + chunkIdx + ")");
        boolean isNew;
        if (lastChunkIdx >= 0 && chunkIdx == lastChunkIdx) {
            isNew = false;
        } else if (chunkIdx == lastChunkIdx + 1) {
            isNew = true;
        } else {
            String allowed =
                    lastChunkIdx < 0
                            ? "0 (the first chunk)"
                            : (lastChunkIdx + 1)
                                    + " (the next chunk) or "
                                    + lastChunkIdx
                                    + " (overwrite the last chunk)";
            throw new IllegalArgumentException(
                    "BlockKvCache.beforeUpdate: chunkIdx "
                            + chunkIdx
                            + (chunkIdx < lastChunkIdx ? " goes back" : " skips ahead")
                            + "; expected "
                            + allowed);
        }
        if (isNew && filled == totalSize) {
            roll();
        }
        pendingChunkIdx = chunkIdx;
        pendingIsNew = isNew;
        expected = Step.UPDATE;
    }

    private void roll() {
        if (moveLen == 0) {
            return; // the whole window is replaced by the new chunk
        }
        try {
            if (kScratch == null) {
                kBuf.set(rollDst, kRollSrc); // disjoint ranges: one copy
                vBuf.set(rollDst, vRollSrc);
            } else {
                kScratch.set(scratchAll, kRollSrc);
                kBuf.set(rollDst, kScratch);
                vScratch.set(scratchAll, vRollSrc);
                vBuf.set(rollDst, vScratch);
            }
        } catch (RuntimeException e) {
            broken = e;
            throw new IllegalStateException(
                    "BlockKvCache: native failure while rolling the window; the cache contents are"
                            + " undefined until reset()",
                    e);
        }
    }

    /**
     * Writes the chunk's keys and values: after the previous chunk while filling, at the last
     * {@code chunkSize} slots in steady state, or over the previous chunk's slots when {@code
     * chunkIdx} repeats.
     *
     * @param k the chunk's keys: the key shape with {@code chunkSize} at {@code seqDim}, the cache's
     *     dtype and device
     * @param v the chunk's values: the value shape with {@code chunkSize} at {@code seqDim}
     * @throws IllegalStateException if {@link #expectedStep()} is not {@link Step#UPDATE}
     * @throws IllegalArgumentException if a shape, dtype or device does not match
     */
    public void update(NDArray k, NDArray v) {
        checkUsable();
        checkStep(Step.UPDATE, "update(k, v)");
        checkChunk("k", k, keyChunkDims);
        checkChunk("v", v, valueChunkDims);
        int offset;
        if (!pendingIsNew) {
            offset = filled - chunkSize;
        } else if (filled < totalSize) {
            offset = filled;
        } else {
            offset = totalSize - chunkSize;
        }
        NDIndex at = NDIndex.sliceAxis(seqDim, offset, offset + chunkSize);
        try {
            kBuf.set(at, k);
            vBuf.set(at, v);
        } catch (RuntimeException e) {
            broken = e;
            throw new IllegalStateException(
                    "BlockKvCache: native failure while writing the chunk; the cache contents are"
                            + " undefined until reset()",
                    e);
        }
        expected = Step.AFTER_UPDATE;
    }

    private void checkChunk(String name, NDArray x, long[] dims) {
        if (x == null) {
            throw new IllegalArgumentException("BlockKvCache.update: " + name + " is null");
        }
        if (x.isReleased()) {
            throw new IllegalArgumentException("BlockKvCache.update: " + name + " is closed");
        }
        if (!Arrays.equals(x.getShape().getShape(), dims)) {
            throw new IllegalArgumentException(
                    "BlockKvCache.update: "
                            + name
                            + " has shape "
                            + x.getShape()
                            + ", expected "
                            + new Shape(dims)
                            + " (chunkSize "
                            + chunkSize
                            + " at seqDim "
                            + seqDim
                            + ")");
        }
        DataType dt = x.getDataType();
        if (dt != dataType) {
            Checks.checkDataType("BlockKvCache.update: " + name, dt, Checks.FLOAT_TYPES);
            throw new IllegalArgumentException(
                    "BlockKvCache.update: "
                            + name
                            + " has dtype "
                            + dt
                            + ", expected the cache dtype "
                            + dataType);
        }
        if (!device.equals(x.getDevice())) {
            throw new IllegalArgumentException(
                    "BlockKvCache.update: "
                            + name
                            + " is on "
                            + x.getDevice()
                            + ", expected the cache device "
                            + device);
        }
    }

    /**
     * Commits the step: the chunk becomes {@link #lastChunkIdx()} and, if it was new and the cache
     * was filling, the cached length grows by {@code chunkSize}.
     *
     * @param chunkIdx the same index as given to {@link #beforeUpdate(long)}
     * @throws IllegalStateException if {@link #expectedStep()} is not {@link Step#AFTER_UPDATE}
     * @throws IllegalArgumentException if {@code chunkIdx} differs from the step's
     */
    public void afterUpdate(long chunkIdx) {
        checkUsable();
        checkStep(Step.AFTER_UPDATE, "afterUpdate(" + chunkIdx + ")");
        if (chunkIdx != pendingChunkIdx) {
            throw new IllegalArgumentException(
                    "BlockKvCache.afterUpdate: chunkIdx "
                            + chunkIdx
                            + " differs from the step's chunkIdx "
                            + pendingChunkIdx
                            + " given to beforeUpdate");
        }
        if (pendingIsNew && filled < totalSize) {
            filled += chunkSize;
        }
        lastChunkIdx = chunkIdx;
        pendingChunkIdx = -1;
        expected = Step.BEFORE_UPDATE;
    }

    /**
     * Returns the cached keys for attention: the valid prefix while filling, the full buffer in
     * steady state. Between {@link #update(NDArray, NDArray)} and {@link #afterUpdate(long)} the new
     * chunk is included. The array is a view owned by the cache (do not close it).
     *
     * @return {@code [..., cachedLength(), ...]} along {@code seqDim}
     * @throws IllegalStateException between {@code beforeUpdate} and {@code update}, when the
     *     contents are in transition
     */
    public NDArray cachedK() {
        checkReadable("cachedK()");
        int len = contentLength();
        if (len == totalSize) {
            return kFull;
        }
        if (kPrefix == null || kPrefixLen != len || kPrefix.isReleased()) {
            if (kPrefix != null) {
                kPrefix.close();
            }
            kPrefix = kBuf.get(NDIndex.sliceAxis(seqDim, 0, len));
            kPrefixLen = len;
        }
        return kPrefix;
    }

    /**
     * Returns the cached values for attention; see {@link #cachedK()}.
     *
     * @return {@code [..., cachedLength(), ...]} along {@code seqDim}
     * @throws IllegalStateException between {@code beforeUpdate} and {@code update}
     */
    public NDArray cachedV() {
        checkReadable("cachedV()");
        int len = contentLength();
        if (len == totalSize) {
            return vFull;
        }
        if (vPrefix == null || vPrefixLen != len || vPrefix.isReleased()) {
            if (vPrefix != null) {
                vPrefix.close();
            }
            vPrefix = vBuf.get(NDIndex.sliceAxis(seqDim, 0, len));
            vPrefixLen = len;
        }
        return vPrefix;
    }

    /**
     * Returns the number of valid slots, i.e. the length of {@link #cachedK()} along {@code
     * seqDim}: {@code sinkSize + windowSize} in steady state.
     *
     * @return the cached length
     * @throws IllegalStateException between {@code beforeUpdate} and {@code update}
     */
    public int cachedLength() {
        checkReadable("cachedLength()");
        return contentLength();
    }

    /**
     * Returns, for each valid slot in cache order, the index in the full stream of the token it
     * holds: {@code 0 .. n-1} while filling; in steady state the sinks {@code 0 .. sinkSize-1}
     * followed by the window {@code streamLength() - windowSize .. streamLength() - 1}. Use it for
     * RoPE with original positions; in-cache positions are simply the slot indices (see the class
     * documentation).
     *
     * @return a new array of length {@link #cachedLength()}
     * @throws IllegalStateException between {@code beforeUpdate} and {@code update}
     */
    public long[] tokenPositions() {
        checkReadable("tokenPositions()");
        int len = contentLength();
        long[] pos = new long[len];
        if (len < totalSize) {
            for (int s = 0; s < len; s++) {
                pos[s] = s;
            }
        } else {
            long shift = contentStreamLength() - totalSize;
            for (int s = 0; s < len; s++) {
                pos[s] = s < sinkSize ? s : s + shift;
            }
        }
        return pos;
    }

    /**
     * Returns the number of stream tokens the cached contents account for: {@code (c + 1) *
     * chunkSize} where {@code c} is the newest chunk written ({@code 0} when empty).
     *
     * @return the stream length
     * @throws IllegalStateException between {@code beforeUpdate} and {@code update}
     */
    public long streamLength() {
        checkReadable("streamLength()");
        return contentStreamLength();
    }

    private int contentLength() {
        if (expected == Step.AFTER_UPDATE && pendingIsNew && filled < totalSize) {
            return filled + chunkSize;
        }
        return filled;
    }

    private long contentStreamLength() {
        long newest = expected == Step.AFTER_UPDATE ? pendingChunkIdx : lastChunkIdx;
        return (newest + 1) * chunkSize;
    }

    /**
     * Returns the full key buffer, {@code [..., sinkSize + windowSize, ...]} along {@code seqDim},
     * whatever the phase: the same array, over the same native storage, for the cache's lifetime
     * (for kernels and captured graphs). Slots beyond {@link #cachedLength()} hold stale data.
     *
     * @return a view of the key storage owned by the cache
     */
    public NDArray keyBuffer() {
        checkOpen();
        return kFull;
    }

    /**
     * Returns the full value buffer; see {@link #keyBuffer()}.
     *
     * @return a view of the value storage owned by the cache
     */
    public NDArray valueBuffer() {
        checkOpen();
        return vFull;
    }

    /**
     * Empties the cache for a new stream without touching its buffers: the next call must be
     * {@code beforeUpdate(0)}. Also clears the undefined state left by a native failure.
     */
    public void reset() {
        checkOpen();
        lastChunkIdx = -1;
        filled = 0;
        pendingChunkIdx = -1;
        pendingIsNew = false;
        expected = Step.BEFORE_UPDATE;
        broken = null;
    }

    /**
     * Returns the call the cache accepts next.
     *
     * @return the expected step
     */
    public Step expectedStep() {
        return expected;
    }

    /**
     * Returns the index of the last chunk committed by {@link #afterUpdate(long)}, {@code -1} when
     * empty.
     *
     * @return the last chunk index
     */
    public long lastChunkIdx() {
        return lastChunkIdx;
    }

    /**
     * Returns whether the cache is full (steady state) as of the last committed chunk.
     *
     * @return {@code true} in steady state, {@code false} while filling
     */
    public boolean isSteadyState() {
        return filled == totalSize;
    }

    /**
     * Returns the cache key shape, with {@code sinkSize + windowSize} at {@code seqDim}.
     *
     * @return the key shape
     */
    public Shape getKeyShape() {
        return keyShape;
    }

    /**
     * Returns the cache value shape, with {@code sinkSize + windowSize} at {@code seqDim}.
     *
     * @return the value shape
     */
    public Shape getValueShape() {
        return valueShape;
    }

    /**
     * Returns the sequence dimension, normalized to {@code [0, rank)}.
     *
     * @return the sequence dimension
     */
    public int getSeqDim() {
        return seqDim;
    }

    /**
     * Returns the number of tokens per chunk.
     *
     * @return the chunk size
     */
    public int getChunkSize() {
        return chunkSize;
    }

    /**
     * Returns the local window size in tokens.
     *
     * @return the window size
     */
    public int getWindowSize() {
        return windowSize;
    }

    /**
     * Returns the number of sink tokens.
     *
     * @return the sink size
     */
    public int getSinkSize() {
        return sinkSize;
    }

    /**
     * Returns the capacity along {@code seqDim}, {@code sinkSize + windowSize}.
     *
     * @return the total size
     */
    public int getTotalSize() {
        return totalSize;
    }

    /**
     * Returns the device holding the buffers.
     *
     * @return the device
     */
    public Device getDevice() {
        return device;
    }

    /**
     * Returns the dtype of the buffers.
     *
     * @return the data type
     */
    public DataType getDataType() {
        return dataType;
    }

    /**
     * Returns whether {@link #close()} has been called.
     *
     * @return {@code true} once closed
     */
    public boolean isClosed() {
        return closed;
    }

    /** Frees the buffers (closes the cache's manager); later calls throw. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            manager.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "BlockKvCache{key="
                + keyShape
                + ", value="
                + valueShape
                + ", seqDim="
                + seqDim
                + ", chunk="
                + chunkSize
                + ", window="
                + windowSize
                + ", sink="
                + sinkSize
                + ", "
                + device
                + ", "
                + dataType
                + ", "
                + stateString()
                + '}';
    }

    /** The bookkeeping, for messages and tests. */
    String stateString() {
        return "expected="
                + expected
                + ", lastChunkIdx="
                + lastChunkIdx
                + ", filled="
                + filled
                + ", pendingChunkIdx="
                + pendingChunkIdx
                + ", pendingIsNew="
                + pendingIsNew
                + ", closed="
                + closed
                + ", broken="
                + (broken != null);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("BlockKvCache is closed");
        }
    }

    private void checkUsable() {
        checkOpen();
        if (broken != null) {
            throw new IllegalStateException(
                    "BlockKvCache: contents undefined after a native failure (" + broken + "); call reset()",
                    broken);
        }
    }

    private void checkStep(Step step, String call) {
        if (expected != step) {
            throw new IllegalStateException(
                    "BlockKvCache: "
                            + call
                            + " called out of order; expected "
                            + expected.call()
                            + " next");
        }
    }

    private void checkReadable(String call) {
        checkUsable();
        if (expected == Step.UPDATE) {
            throw new IllegalStateException(
                    "BlockKvCache: "
                            + call
                            + " called between beforeUpdate and update, while the contents are in"
                            + " transition; expected update(k, v) next");
        }
    }

    /** A builder for {@link BlockKvCache}: {@code setX} are required, {@code optX} optional. */
    public static final class Builder {

        private Shape keyShape;
        private Shape valueShape;
        private Integer seqDim;
        private Integer chunkSize;
        private Integer windowSize;
        private int sinkSize;
        private Device device;
        private DataType dataType;

        Builder() {}

        /**
         * Sets the cache key shape; its size at {@code seqDim} must be {@code sinkSize +
         * windowSize} or {@code -1} (filled in by the cache). Required.
         *
         * @param keyShape e.g. {@code [batch, heads, -1, headDim]}
         * @return this builder
         */
        public Builder setKeyShape(Shape keyShape) {
            this.keyShape = Objects.requireNonNull(keyShape, "keyShape");
            return this;
        }

        /**
         * Sets the cache value shape: the key shape except, possibly, the last dimension.
         * Required.
         *
         * @param valueShape e.g. {@code [batch, heads, -1, valueDim]}
         * @return this builder
         */
        public Builder setValueShape(Shape valueShape) {
            this.valueShape = Objects.requireNonNull(valueShape, "valueShape");
            return this;
        }

        /**
         * Sets the sequence (rolling) dimension; negative counts from the end. Required.
         *
         * @param seqDim the dimension index
         * @return this builder
         */
        public Builder setSeqDim(int seqDim) {
            this.seqDim = seqDim;
            return this;
        }

        /**
         * Sets the number of tokens per chunk ({@code >= 1}). Required.
         *
         * @param chunkSize the chunk size
         * @return this builder
         */
        public Builder setChunkSize(int chunkSize) {
            this.chunkSize = chunkSize;
            return this;
        }

        /**
         * Sets the local window size ({@code >= chunkSize}; {@code sinkSize + windowSize} must be a
         * multiple of the chunk size). Required.
         *
         * @param windowSize the window size in tokens
         * @return this builder
         */
        public Builder setWindowSize(int windowSize) {
            this.windowSize = windowSize;
            return this;
        }

        /**
         * Sets the number of sink tokens kept forever at the start of the cache. Default 0.
         *
         * @param sinkSize the sink size
         * @return this builder
         */
        public Builder optSinkSize(int sinkSize) {
            this.sinkSize = sinkSize;
            return this;
        }

        /**
         * Sets the device of the buffers. Default: the device of the manager given to {@link
         * #build(NDManager)}.
         *
         * @param device the device
         * @return this builder
         */
        public Builder optDevice(Device device) {
            this.device = device;
            return this;
        }

        /**
         * Sets the dtype of the buffers: float16, float32 or float64. Default float32. bfloat16
         * (and {@code UNKNOWN}, which is how DJL 0.36.0 reports bfloat16 arrays) is refused with
         * an {@link IllegalArgumentException}: DJL 0.36.0's JNI aborts the JVM on bfloat16
         * conversions.
         *
         * @param dataType the data type
         * @return this builder
         */
        public Builder optDataType(DataType dataType) {
            this.dataType = dataType;
            return this;
        }

        /**
         * Allocates the cache; its buffers belong to a new sub-manager of {@code manager}.
         *
         * @param manager the parent manager
         * @return the empty cache
         * @throws IllegalArgumentException if a required setting is missing or the settings are
         *     inconsistent
         */
        public BlockKvCache build(NDManager manager) {
            return new BlockKvCache(this, manager);
        }
    }
}
