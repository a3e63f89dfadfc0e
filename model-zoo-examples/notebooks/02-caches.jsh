// FlashDJL notebook 2: KV caches. The streaming sink + window cache (BlockKvCache) directly and through the
// decoder attention block, which must equal the masked full computation.
// Run: bin/jshell model-zoo-examples/notebooks/02-caches.jsh
import ai.djl.ndarray.*;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.*;
import ai.djl.training.ParameterStore;
import org.flashdjl.engine.cache.*;
import org.flashdjl.engine.nn.*;
import org.flashdjl.kvcache.BlockKvCache;

void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); }

var manager = NDManager.newBaseManager();
// BlockKvCache: 2 sinks + a window of 4, one token per chunk. Watch the positions it holds.
var cache = BlockKvCache.builder().setKeyShape(new Shape(1, 2, -1, 8)).setValueShape(new Shape(1, 2, -1, 8)).
        setSeqDim(2).setChunkSize(1).setWindowSize(4).optSinkSize(2).build(manager);
for (int i = 0; i < 9; i++) {
    var kv = manager.full(new Shape(1, 2, 1, 8), (float) i);
    cache.beforeUpdate(i);
    cache.update(kv, kv);
    cache.afterUpdate(i);
    System.out.println("after token " + i + ": positions " + java.util.Arrays.toString(cache.tokenPositions()));
}
check(java.util.Arrays.equals(cache.tokenPositions(), new long[] {0, 1, 5, 6, 7, 8}), "sinks + window");
cache.close();

// The decoder attention block (GQA 4/2, RoPE, window 4 + 2 sinks) over that cache equals the masked full pass.
var attn = DecoderAttentionBlock.builder().setHiddenSize(64).setNumHeads(4).optNumKvHeads(2).
        optSlidingWindow(4).optSinkTokens(2).optBackend("online").build();
attn.initialize(manager, DataType.FLOAT32, new Shape(1, 1, 64));
var ps = new ParameterStore(manager, false);
var x = manager.randomNormal(new Shape(1, 12, 64));
var full = attn.forward(ps, x, null);
var streaming = new StreamingKvCache(manager, 1, 2, 16, DataType.FLOAT32, 4, 2, StreamingKvCache.Positions.ORIGINAL);
var steps = new NDList();
steps.add(attn.forward(ps, x.get(new NDIndex(":, 0:5, :")), streaming));   // a 5-token prompt
for (int t = 5; t < 12; t++) {
    steps.add(attn.forward(ps, x.get(new NDIndex(":, {}:{}, :", t, t + 1)), streaming));
}
float err = NDArrays.concat(steps, 1).sub(full).abs().max().getFloat();
System.out.printf("streaming cache (%d slots, %d bytes) vs masked full: max |diff| = %.2e%n", streaming.cachedLength(), streaming.memoryBytes(), err);
check(err < 1e-5, "streaming vs full " + err);
streaming.close();
manager.close();
/exit
