package org.flashdjl.examples;

import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;
import org.flashdjl.examples.llama.LlamaModel;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code flashdjl batch}: several prompts decoded together with continuous batching; later prompts join a
 * running batch, and each finishes on its own. The page pool (or the contiguous store) must hold the most
 * demanding {@code --max-batch} requests at once, or the command is refused before it starts.
 */
final class BatchCommand {

    private BatchCommand() {}

    private static String oneLine(String s) {
        return CliArgs.printable(s.replace("\n", "\\n"));
    }

    static int run(String[] args, PrintStream out) throws IOException {
        GenerateCommand.ModelArgs m = new GenerateCommand.ModelArgs();
        List<String> prompts = new ArrayList<>();
        int maxBatch = 4;
        int maxNew = 24;
        boolean paged = true;
        int pageSize = 16;
        int numPages = 256;
        CliArgs a = new CliArgs(args);
        while (a.hasNext()) {
            String flag = a.next();
            if (m.accept(flag, a)) {
                continue;
            }
            switch (flag) {
                case "--help":
                case "-h":
                    out.println(GenerateCommand.USAGE);
                    return 0;
                case "--prompt":
                    prompts.add(a.value(flag));
                    break;
                case "--max-batch":
                    maxBatch = a.intValue(flag, 1);
                    break;
                case "--max-new-tokens":
                    maxNew = a.intValue(flag, 1);
                    break;
                case "--store":
                    paged = a.choice(flag, "paged", "contiguous").equals("paged");
                    break;
                case "--page-size":
                    pageSize = a.intValue(flag, 1);
                    break;
                case "--pages":
                    numPages = a.intValue(flag, 1);
                    break;
                default:
                    throw new CliArgs.UsageException("unknown option " + flag);
            }
        }
        m.check();
        if (prompts.isEmpty()) {
            prompts.addAll(Arrays.asList("Hello", "The quick brown fox", "Once upon a time", "FlashDJL",
                    "Attention is all you need", "Paged KV caches"));
        }
        try (LoadedModel lm = m.load()) {
            LlamaModel model = lm.getModel();
            Generator single = new Generator(model, lm.getTokenizer(), lm.getManager());
            List<BatchRequest> requests = new ArrayList<>();
            long[] tokens = new long[prompts.size()]; // KV tokens each request holds at its end
            for (int i = 0; i < prompts.size(); i++) {
                // Different lengths, and half of the prompts arrive while the batch is running.
                int n = Math.max(1, maxNew - 4 * (i % 3));
                GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(n).build();
                int[] ids = m.fitPrompt(single.promptIds(prompts.get(i), cfg), n, model, "prompt " + i, false);
                tokens[i] = (long) ids.length + n;
                requests.add(new BatchRequest(ids, cfg, i < prompts.size() / 2 ? 0 : 3 * (i - prompts.size() / 2
                        + 1)));
            }
            checkStoreFits(lm, tokens, maxBatch, paged, numPages, pageSize);
            final boolean usePaged = paged;
            final int pages = numPages;
            final int size = pageSize;
            BatchGenerator batch = new BatchGenerator(model, lm.getTokenizer(), lm.getManager(), maxBatch,
                    (mdl, mgr) -> usePaged ? mdl.newPagedStore(pages, size) : mdl.newSequenceStore(mgr));
            out.printf(Locale.ROOT, "== FlashDJL: continuous batching, %d prompts, at most %d at a time, %s ==%n",
                    prompts.size(), maxBatch, paged ? "PagedKvCache (" + numPages + " pages x " + pageSize
                            + " tokens)" : "contiguous store");
            List<GenerationResult> results = batch.generate(requests, null);
            for (int i = 0; i < results.size(); i++) {
                GenerationResult r = results.get(i);
                out.printf(Locale.ROOT, "[%d] (joins at step %d, %d new tokens) %s|%s%n", i,
                        requests.get(i).getArrivalStep(), r.getTokenIds().length, oneLine(prompts.get(i)),
                        oneLine(r.getText()));
            }
            BatchGenerator.Stats s = batch.getLastStats();
            out.printf(Locale.ROOT, "steps     : %d batched forward passes, up to %d sequences each%n", s.getSteps(),
                    s.getMaxRunning());
            out.printf(Locale.ROOT, "throughput: %d tokens in %.1f ms (%.1f tokens/s), KV storage %s%n", s.getTokens(),
                    s.getNanos() / 1e6, s.getTokens() / (s.getNanos() / 1e9), CliArgs.bytes(s.getPeakKvBytes()));
            return 0;
        }
    }

    // The store must hold the maxBatch most demanding requests at once, and fit the device.
    private static void checkStoreFits(LoadedModel lm, long[] tokens, int maxBatch, boolean paged, int numPages,
            int pageSize) {
        long[] sorted = tokens.clone();
        Arrays.sort(sorted);
        double perToken = lm.getModel().kvBytesPerToken();
        if (!paged) {
            double worst = 0;
            for (int i = sorted.length - 1; i >= Math.max(0, sorted.length - maxBatch); i--) {
                worst += 2.0 * sorted[i]; // contiguous buffers grow by doubling
            }
            CliArgs.checkFits(worst * perToken, lm.getManager().getDevice(), "--store contiguous with --max-batch "
                    + maxBatch);
            return;
        }
        CliArgs.checkFits((double) numPages * pageSize * perToken, lm.getManager().getDevice(), "--pages " + numPages
                + " --page-size " + pageSize + " (the page pool)");
        long worstPages = 0;
        for (int i = sorted.length - 1; i >= Math.max(0, sorted.length - maxBatch); i--) {
            worstPages += (sorted[i] + pageSize - 1) / pageSize;
        }
        if (worstPages > numPages) {
            long largest = (sorted[sorted.length - 1] + pageSize - 1) / pageSize;
            throw new CliArgs.UsageException("--pages " + numPages + " --page-size " + pageSize + " cannot hold the"
                    + " batch: " + (largest > numPages ? "the longest request alone needs " + largest + " pages ("
                            + sorted[sorted.length - 1] + " tokens)" : "up to " + maxBatch + " requests at once"
                            + " need " + worstPages + " pages")
                    + "; raise --pages or --page-size, or lower --max-batch or --max-new-tokens");
        }
    }
}
