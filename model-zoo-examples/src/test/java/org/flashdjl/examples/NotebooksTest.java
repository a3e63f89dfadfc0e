package org.flashdjl.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import jdk.jshell.DeclarationSnippet;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Runs every {@code notebooks/*.jsh} in batch mode through the {@code jdk.jshell} API (in-process execution, the
 * test class path): any rejected snippet, unresolved reference or exception fails the test with the snippet.
 */
class NotebooksTest {

    @TempDir
    static Path tmp;

    static Stream<Path> notebooks() throws IOException {
        try (Stream<Path> s = Files.list(Paths.get("notebooks"))) {
            List<Path> list = s.filter(p -> p.toString().endsWith(".jsh")).sorted().collect(Collectors.toList());
            assertTrue(list.size() >= 3, "notebooks missing: " + list);
            return list.stream();
        }
    }

    @ParameterizedTest
    @MethodSource("notebooks")
    void notebookRunsWithoutErrors(Path notebook) throws Exception {
        System.setProperty("flashdjl.demo.dir", tmp.resolve("demo").toString());
        List<String> lines = Files.readAllLines(notebook);
        try (JShell shell = JShell.builder().executionEngine("local").build()) {
            for (String entry : classPath()) {
                shell.addToClasspath(entry);
            }
            SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
            // Line by line, as the jshell tool reads a file: a snippet runs as soon as its text is complete.
            String buffer = "";
            int count = 0;
            for (String line : lines) {
                if (buffer.isEmpty() && line.trim().startsWith("/")) {
                    continue; // a jshell command such as /exit
                }
                buffer = buffer + line + "\n";
                SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(buffer);
                while (info.completeness().isComplete() && !buffer.trim().isEmpty()) {
                    count++;
                    run(shell, notebook, info.source());
                    buffer = info.remaining();
                    info = analysis.analyzeCompletion(buffer);
                }
            }
            if (!buffer.trim().isEmpty()) {
                fail(notebook + ": incomplete snippet at the end: " + buffer.trim());
            }
            assertTrue(count > 5, notebook + " has only " + count + " snippets");
        }
    }

    private static void run(JShell shell, Path notebook, String snippet) {
        for (SnippetEvent e : shell.eval(snippet)) {
            if (e.exception() != null) {
                fail(notebook + ": snippet threw " + e.exception() + "\n" + snippet, e.exception());
            }
            if (e.status() == Snippet.Status.REJECTED || e.status() == Snippet.Status.RECOVERABLE_DEFINED
                    || e.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED) {
                String diags = shell.diagnostics(e.snippet()).map(d -> d.getMessage(Locale.ROOT))
                        .collect(Collectors.joining("; "));
                List<String> unresolved = e.snippet() instanceof DeclarationSnippet
                        ? shell.unresolvedDependencies((DeclarationSnippet) e.snippet()).collect(Collectors.toList())
                        : new ArrayList<>();
                fail(notebook + ": snippet " + e.status() + ": " + diags + " " + unresolved + "\n" + snippet);
            }
        }
    }

    // The test class path, with surefire's manifest-only jar expanded.
    private static List<String> classPath() throws IOException {
        Set<String> out = new LinkedHashSet<>();
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            out.add(e);
            if (e.endsWith(".jar") && Files.isRegularFile(Paths.get(e))) {
                try (JarFile jar = new JarFile(e)) {
                    Manifest mf = jar.getManifest();
                    String cp = mf == null ? null : mf.getMainAttributes().getValue("Class-Path");
                    if (cp != null) {
                        for (String u : cp.trim().split("\\s+")) {
                            try {
                                out.add(Paths.get(new java.net.URI(u)).toString());
                            } catch (java.net.URISyntaxException | IllegalArgumentException ex) {
                                out.add(Paths.get(e).getParent().resolve(u).toString());
                            }
                        }
                    }
                }
            }
        }
        return new ArrayList<>(out);
    }
}
