package org.flashdjl.examples;

import org.flashdjl.examples.serving.ServingModelDir;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;

/** {@code flashdjl serving-dir --out DIR}: writes a model directory that DJL Serving loads. */
final class ServingDirCommand {

    private ServingDirCommand() {}

    static int run(String[] args, PrintStream out) {
        Path dest = null;
        Path model = null;
        int maxPrompt = 512;
        int maxNew = 128;
        try {
            CliArgs a = new CliArgs(args);
            while (a.hasNext()) {
                String flag = a.next();
                switch (flag) {
                    case "--out":
                        dest = Paths.get(a.value(flag));
                        break;
                    case "--model":
                        model = Paths.get(a.value(flag));
                        break;
                    case "--max-prompt-tokens":
                        maxPrompt = a.intValue(flag, 1);
                        break;
                    case "--max-new-tokens":
                        maxNew = a.intValue(flag, 1);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            if (dest == null) {
                throw new IllegalArgumentException("serving-dir needs --out DIR");
            }
        } catch (IllegalArgumentException e) {
            out.println("error: " + e.getMessage());
            out.println(GenerateCommand.USAGE);
            return 2;
        }
        try {
            Path dir = ServingModelDir.write(dest, model == null ? LoadedModel.defaultDemoDir() : model, model == null,
                    maxPrompt, maxNew);
            out.println("wrote DJL Serving model directory " + dir);
            out.println("  serving.properties, config.json, *.safetensors (+ tokenizer.json when present)");
            out.println("  load it: Criteria.builder().setTypes(Input.class, Output.class).optModelPath(dir)"
                    + ".optEngine(\"PyTorch\").build().loadModel()");
            return 0;
        } catch (IOException e) {
            out.println("error: " + e.getMessage());
            return 2;
        }
    }
}
