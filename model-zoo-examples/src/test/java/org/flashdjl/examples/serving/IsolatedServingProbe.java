package org.flashdjl.examples.serving;

import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.ChunkedBytesSupplier;
import ai.djl.modality.Input;
import ai.djl.modality.Output;
import ai.djl.ndarray.BytesSupplier;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;

import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.concurrent.TimeUnit;

/**
 * Loads a serving directory the way a server with only DJL on its class path does, in a JVM of its own (see {@link
 * ServingModelDirTest}): uses nothing but DJL's api and the JDK, so it runs with DJL's api and PyTorch engine jars
 * alone. Prints {@code isolated} (the project's classes are not visible), the translator's class, then one {@code
 * answer CODE BODY} line per request (newlines of a streamed body escaped).
 */
public final class IsolatedServingProbe {

    private IsolatedServingProbe() {}

    /**
     * Runs the probe.
     *
     * @param args the model directory, then request bodies
     * @throws Exception on any failure (the parent test reads the exit code and output)
     */
    public static void main(String[] args) throws Exception {
        try {
            Class.forName("org.flashdjl.examples.serving.LlamaServingTranslator");
            System.out.println("project classes are visible");
        } catch (ClassNotFoundException e) {
            System.out.println("isolated");
        }
        Criteria<Input, Output> criteria = Criteria.builder().setTypes(Input.class, Output.class)
                .optModelPath(Paths.get(args[0])).build();
        try (ZooModel<Input, Output> model = criteria.loadModel(); Predictor<Input, Output> p = model.newPredictor()) {
            Object t = model.getTranslator();
            System.out.println("translator " + t.getClass().getName() + " loaded by "
                    + (t.getClass().getClassLoader() == IsolatedServingProbe.class.getClassLoader() ? "the app"
                            : "the model's libs/") + " class loader");
            for (int i = 1; i < args.length; i++) {
                Input in = new Input();
                in.add(args[i]);
                Output out = p.predict(in);
                BytesSupplier data = out.getData();
                String body;
                if (data instanceof ChunkedBytesSupplier) {
                    ChunkedBytesSupplier c = (ChunkedBytesSupplier) data;
                    StringBuilder sb = new StringBuilder();
                    while (c.hasNext()) {
                        sb.append(new String(c.nextChunk(60, TimeUnit.SECONDS), StandardCharsets.UTF_8));
                    }
                    body = sb.toString();
                } else {
                    body = data.getAsString();
                }
                System.out.println("answer " + out.getCode() + " " + body.replace("\n", "\\n"));
            }
        }
    }
}
