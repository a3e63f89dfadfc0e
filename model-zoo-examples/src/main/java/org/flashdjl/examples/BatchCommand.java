package org.flashdjl.examples;

import org.flashdjl.examples.generate.BatchGenerator;
import org.flashdjl.examples.generate.BatchRequest;
import org.flashdjl.examples.generate.GenerationConfig;
import org.flashdjl.examples.generate.GenerationResult;
import org.flashdjl.examples.generate.Generator;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code flashdjl batch}: several prompts decoded together with continuous batching; later prompts join a
 * running batch, and each finishes on its own.
 */
final class BatchCommand {

    private BatchCommand() {}

    private static String oneLine(String s) {
        return CliArgs.printable(s.replace("\n", "\\n"));
    }

    static int run(String[] args, PrintStream out) {
        GenerateCommand.ModelArgs m = new GenerateCommand.ModelArgs();
        List<String> prompts = new ArrayList<>();
        int maxBatch = 4;
        int maxNew = 24;
        boolean paged = true;
        int pageSize = 16;
        int numPages = 256;
        try {
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
                        String st = a.value(flag);
                        if (!st.equals("paged") && !st.equals("contiguous")) {
                            throw new IllegalArgumentException("--store must be paged or contiguous, got " + st);
                        }
                        paged = st.equals("paged");
                        break;
                    case "--page-size":
                        pageSize = a.intValue(flag, 1);
                        break;
                    case "--pages":
                        numPages = a.intValue(flag, 1);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            m.check();
        } catch (IllegalArgumentException e) {
            out.println("error: " + e.getMessage());
            out.println(GenerateCommand.USAGE);
            return 2;
        }
        if (prompts.isEmpty()) {
            prompts.addAll(Arrays.asList("Hello", "The quick brown fox", "Once upon a time", "FlashDJL",
                    "Attention is all you need", "Paged KV caches"));
        }
        try (LoadedModel lm = m.load()) {
            Generator single = new Generator(lm.getModel(), lm.getTokenizer(), lm.getManager());
            List<BatchRequest> requests = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                // Different lengths, and half of the prompts arrive while the batch is running.
                int n = Math.max(1, maxNew - 4 * (i % 3));
                GenerationConfig cfg = GenerationConfig.builder().optMaxNewTokens(n).build();
                requests.add(new BatchRequest(single.promptIds(prompts.get(i), cfg), cfg, i < prompts.size() / 2
                        ? 0 : 3 * (i - prompts.size() / 2 + 1)));
            }
            final boolean usePaged = paged;
            final int pages = numPages;
            final int size = pageSize;
            BatchGenerator batch = new BatchGenerator(lm.getModel(), lm.getTokenizer(), lm.getManager(), maxBatch,
                    (model, mgr) -> usePaged ? model.newPagedStore(pages, size) : model.newSequenceStore(mgr));
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
        } catch (IOException | IllegalArgumentException | UnsupportedOperationException e) {
            out.println("error: " + e.getMessage());
            return 2;
        }
    }
}
