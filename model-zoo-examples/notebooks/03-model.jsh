// FlashDJL notebook 3: the LLaMA-family model. The offline demo checkpoint (seeded random weights written as
// config.json + model.safetensors), streaming generation, continuous batching.
// Run: bin/jshell model-zoo-examples/notebooks/03-model.jsh
import ai.djl.Device;
import org.flashdjl.examples.LoadedModel;
import org.flashdjl.examples.generate.*;
import org.flashdjl.examples.llama.AttentionOptions;

void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); }

// null = the demo checkpoint (target/demo-model, or -Dflashdjl.demo.dir); pass a Hugging Face dir to use a real model.
var lm = LoadedModel.load(null, Device.cpu(), AttentionOptions.builder().optBackend("online").build());
System.out.println(lm.getModel().getConfig());
var gen = new Generator(lm.getModel(), lm.getTokenizer(), lm.getManager());
var cfg = GenerationConfig.builder().optMaxNewTokens(8).build();
var result = gen.generate("Hello", cfg, e -> System.out.print(e.getText()));
System.out.printf("%n%d tokens, %.1f tokens/s decode, KV %d bytes%n", result.getTokenIds().length, result.getDecodeTokensPerSecond(), result.getKvBytes());

// Continuous batching: three prompts, the third joins at step 3; each equals its single-stream result.
var batch = new BatchGenerator(lm.getModel(), lm.getTokenizer(), lm.getManager(), 2);
var prompts = java.util.List.of("Hello", "The quick brown fox", "FlashDJL");
var requests = new java.util.ArrayList<BatchRequest>();
for (int i = 0; i < prompts.size(); i++) {
    requests.add(new BatchRequest(gen.promptIds(prompts.get(i), cfg), cfg, i == 2 ? 3 : 0));
}
var results = batch.generate(requests, null);
for (int i = 0; i < prompts.size(); i++) {
    System.out.println(prompts.get(i) + " | " + results.get(i).getText().replaceAll("\\p{Cntrl}", "."));
    check(java.util.Arrays.equals(results.get(i).getTokenIds(), gen.generate(prompts.get(i), cfg, null).getTokenIds()), "batched == single for " + i);
}
System.out.println(batch.getLastStats().getSteps() + " batched steps");
lm.close();
/exit
