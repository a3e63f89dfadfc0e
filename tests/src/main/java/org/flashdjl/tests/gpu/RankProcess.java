package org.flashdjl.tests.gpu;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Starts one child JVM per rank with the usual distributed environment (RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR, MASTER_PORT, NCCL_NVLS_ENABLE=0) and the parent's JVM and class path.
 *
 * <p>Each rank gets its own {@code java.io.tmpdir}: JCuda extracts its native library to a fixed file name in the
 * temp directory, and ranks starting together would otherwise overwrite the file another rank is mapping (seen
 * as a SIGBUS in the dynamic loader with four ranks on a 4 x H200 machine).
 */
final class RankProcess {

    private RankProcess() {}

    /**
     * Builds the process of one rank.
     *
     * @param rank the rank (also its LOCAL_RANK: one GPU per rank)
     * @param world the number of ranks
     * @param port the rendezvous port on 127.0.0.1
     * @param jvmArgs extra JVM options (system properties)
     * @param main the main class
     * @param args the main class's arguments
     * @return a process builder, not started
     * @throws IOException if the rank's temp directory cannot be created
     */
    static ProcessBuilder builder(int rank, int world, int port, List<String> jvmArgs, Class<?> main,
            List<String> args) throws IOException {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        Path tmp = Files.createDirectories(Path.of(System.getProperty("java.io.tmpdir"),
                "flashdjl-rank-" + ProcessHandle.current().pid() + "-" + rank));
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                "-Djava.io.tmpdir=" + tmp));
        cmd.addAll(jvmArgs);
        cmd.add(main.getName());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> env = pb.environment();
        env.put("RANK", Integer.toString(rank));
        env.put("WORLD_SIZE", Integer.toString(world));
        env.put("LOCAL_RANK", Integer.toString(rank));
        env.put("MASTER_ADDR", "127.0.0.1");
        env.put("MASTER_PORT", Integer.toString(port));
        env.put("NCCL_NVLS_ENABLE", "0");
        return pb;
    }
}
