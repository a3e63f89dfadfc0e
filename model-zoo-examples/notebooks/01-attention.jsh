// FlashDJL notebook 1: the attention operator, its backends and the attention blocks.
// Run: bin/jshell model-zoo-examples/notebooks/01-attention.jsh
import ai.djl.ndarray.*;
import ai.djl.ndarray.types.*;
import ai.djl.training.ParameterStore;
import org.flashdjl.engine.*;
import org.flashdjl.engine.nn.*;
import org.flashdjl.ops.attention.*;

void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); }

// What this machine can run: every registered backend, available or not, and why.
System.out.println(CapabilityReport.probe().format());

var manager = NDManager.newBaseManager();
manager.getEngine().setRandomSeed(1);
// GQA: 8 query heads over 2 key/value heads, causal, a sliding window of 16 with 4 sink tokens.
var q = manager.randomNormal(new Shape(1, 8, 64, 32));   // [batch, heads, seq, dim]
var k = manager.randomNormal(new Shape(1, 2, 64, 32));   // [batch, kvHeads, seq, dim]
var v = manager.randomNormal(new Shape(1, 2, 64, 32));
var spec = AttentionSpec.builder().optCausal(true).optWindowBounds(16, 0).optSinkTokens(4).optReturnLse(true).build();
var online = Attention.forward(q, k, v, spec, "online");
var math = Attention.forward(q, k, v, spec, "math");
float err = online.getOutput().sub(math.getOutput()).abs().max().getFloat();
System.out.printf("online vs math, out %s, lse %s: max |diff| = %.2e%n", online.getOutput().getShape(), online.getLse().getShape(), err);
check(err < 1e-4, "online vs math " + err);

// The same through a DJL Block (NativeAttentionBlock), in bshd layout.
var block = NativeAttentionBlock.builder().optQkvFormat("bshd").optBackend("online").optCausal(true).build();
var ps = new ParameterStore(manager, false);
var out = block.forward(ps, new NDList(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)), false).head();
System.out.println(block + " -> " + out.getShape());
check(out.getShape().equals(new Shape(1, 64, 8, 32)), "bshd output shape");

// The drop-in for DJL's ScaledDotProductAttentionBlock: DJL's parameters load into it unchanged.
var djl = ai.djl.nn.transformer.ScaledDotProductAttentionBlock.builder().setEmbeddingSize(64).setHeadCount(4).build();
djl.initialize(manager, DataType.FLOAT32, new Shape(2, 10, 64));
var bytes = new java.io.ByteArrayOutputStream();
djl.saveParameters(new java.io.DataOutputStream(bytes));
var flash = FlashScaledDotProductAttentionBlock.builder().setEmbeddingSize(64).setHeadCount(4).optBackend("online").build();
flash.loadParameters(manager, new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray())));
var x = manager.randomNormal(new Shape(2, 10, 64));
float dropInErr = djl.forward(ps, new NDList(x), false).head().sub(flash.forward(ps, new NDList(x), false).head()).abs().max().getFloat();
System.out.printf("DJL ScaledDotProductAttentionBlock vs FlashScaledDotProductAttentionBlock: max |diff| = %.2e%n", dropInErr);
check(dropInErr < 1e-5, "drop-in " + dropInErr);
manager.close();
/exit
