package org.flashdjl.examples.serving;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The jars a serving directory's {@code libs/} needs beyond DJL's api and PyTorch engine (and their own
 * dependencies, which DJL Serving carries): the four FlashDJL modules, DJL's Hugging Face tokenizers, JCuda and its
 * natives. Each is found where this JVM loaded it from: a jar is copied, a classes directory (a build tree) is
 * packed into a jar.
 */
final class ServingLibs {

    /** What goes into libs/: a jar name and a class or resource inside it. */
    private static final String[][] LIBS = {
        {"flashdjl-ops", "org/flashdjl/ops/attention/Attention.class"},
        {"flashdjl-kvcache", "org/flashdjl/kvcache/paged/PagedKvCache.class"},
        {"flashdjl-engine-ext", "org/flashdjl/engine/nn/DecoderAttentionBlock.class"},
        {"flashdjl-model-zoo-examples", "org/flashdjl/examples/serving/LlamaServingTranslator.class"},
        {"tokenizers", "ai/djl/huggingface/tokenizers/HuggingFaceTokenizer.class"},
        {"jcuda", "jcuda/driver/JCudaDriver.class"},
        {"jcuda-natives", "lib/libJCudaDriver-12.6.0-linux-x86_64.so"},
    };

    private ServingLibs() {}

    /**
     * Writes the jars into a directory.
     *
     * @param libs the directory (created)
     * @return the jars written, in {@link #LIBS} order
     * @throws IOException if a jar is not on this JVM's class path or cannot be copied
     */
    static List<Path> write(Path libs) throws IOException {
        Files.createDirectories(libs);
        ClassLoader cl = ServingLibs.class.getClassLoader();
        List<Path> out = new ArrayList<>();
        for (String[] lib : LIBS) {
            URL url = cl.getResource(lib[1]);
            if (url == null) {
                throw new IOException("cannot find " + lib[0] + " (" + lib[1] + ") on this JVM's class path; run"
                        + " serving-dir from the FlashDJL build (bin/flashdjl) so that every jar of libs/ is there");
            }
            Path source = codeSource(lib[1], url);
            if (Files.isDirectory(source)) {
                Path jar = libs.resolve(lib[0] + ".jar");
                packDirectory(source, jar);
                out.add(jar);
            } else {
                Path jar = libs.resolve(source.getFileName().toString());
                Files.copy(source, jar, StandardCopyOption.REPLACE_EXISTING);
                out.add(jar);
            }
        }
        return out;
    }

    // The jar file or classes directory that holds a resource.
    private static Path codeSource(String resource, URL url) throws IOException {
        try {
            if ("jar".equals(url.getProtocol())) {
                String s = url.getPath(); // file:/x/y.jar!/a/b.class
                return Paths.get(new URL(s.substring(0, s.indexOf("!/"))).toURI());
            }
            if ("file".equals(url.getProtocol())) {
                Path p = Paths.get(url.toURI());
                for (int i = resource.split("/").length; i > 0; i--) {
                    p = p.getParent();
                }
                return p;
            }
        } catch (URISyntaxException | RuntimeException e) {
            throw new IOException("cannot locate the jar of " + resource + " from " + url + ": " + e, e);
        }
        throw new IOException("cannot copy " + resource + " from " + url + ": not a jar or a directory");
    }

    private static void packDirectory(Path dir, Path jar) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(Files::isRegularFile).sorted().collect(Collectors.toList());
        }
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream jos = new JarOutputStream(os)) {
            for (Path f : files) {
                String name = dir.relativize(f).toString().replace(f.getFileSystem().getSeparator(), "/");
                JarEntry e = new JarEntry(name);
                e.setTime(Files.getLastModifiedTime(f).toMillis());
                jos.putNextEntry(e);
                Files.copy(f, jos);
                jos.closeEntry();
            }
        }
    }
}
