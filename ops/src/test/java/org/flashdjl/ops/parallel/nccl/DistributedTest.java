package org.flashdjl.ops.parallel.nccl;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.parallel.group.ProcessGroup;
import org.flashdjl.ops.parallel.group.ReduceOp;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

/** Distributed init's environment handling, refusals and fallbacks (no GPU needed). */
class DistributedTest {

    @Test
    void defaultsAreASingleLocalRank() {
        Distributed.Config c = Distributed.builder().optEnvironment(Map.of()).resolve();
        assertEquals(new Distributed.Config(0, 1, 0, 0, "127.0.0.1", 29500, Duration.ofMinutes(10),
                Distributed.Backend.LOCAL), c);
        try (ProcessGroup g = Distributed.builder().optEnvironment(Map.of()).init()) {
            assertEquals("local", g.backendName());
            assertEquals(1, g.size());
            g.barrier();
        }
    }

    @Test
    void torchrunVariablesAreRead() {
        Map<String, String> env = Map.of("RANK", "5", "WORLD_SIZE", "8", "LOCAL_RANK", "1", "MASTER_ADDR", "node0",
                "MASTER_PORT", "1234", "FLASHDJL_PG_TIMEOUT_S", "30");
        Distributed.Config c = Distributed.builder().optEnvironment(env).resolve();
        assertEquals(new Distributed.Config(5, 8, 1, 1, "node0", 1234, Duration.ofSeconds(30),
                Distributed.Backend.NCCL), c);
        c = Distributed.builder().optEnvironment(env).optDevice(3).optTimeout(Duration.ofSeconds(7)).resolve();
        assertEquals(3, c.device());
        assertEquals(Duration.ofSeconds(7), c.timeout());
        // LOCAL_RANK defaults to RANK
        assertEquals(1, Distributed.builder().optEnvironment(Map.of("RANK", "1", "WORLD_SIZE", "2")).resolve()
                .device());
    }

    @Test
    void badVariablesAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Distributed.builder().optEnvironment(Map.of("RANK", "x")).resolve());
        assertEquals("RANK='x' is not an integer", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Distributed.builder().optEnvironment(Map.of("RANK", "2", "WORLD_SIZE", "2")).resolve());
        assertEquals("RANK=2 must be < WORLD_SIZE=2", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Distributed.builder().optEnvironment(Map.of("MASTER_PORT", "70000")).resolve());
        assertEquals("MASTER_PORT=70000 must be 1..65535", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distributed.builder()
                .optEnvironment(Map.of("WORLD_SIZE", "2")).optBackend("local").resolve());
        assertTrue(e.getMessage().startsWith("the local backend is one JVM: WORLD_SIZE=2 needs the nccl backend"));
        e = assertThrows(IllegalArgumentException.class, () -> Distributed.builder().optBackend("gloo"));
        assertEquals("unknown process group backend 'gloo'; allowed: auto, nccl, local", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Distributed.builder().optL2FetchGranularity(100));
    }

    @Test
    void ncclNeedsNvlsOffAndALibrary() {
        Map<String, String> env = Map.of("RANK", "0", "WORLD_SIZE", "2");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Distributed.builder().optEnvironment(env).init());
        assertTrue(e.getMessage().startsWith("NCCL_NVLS_ENABLE is unset: NVLink multicast must be off"),
                e.getMessage());
        if (NcclProcessGroup.unavailableReason() != null) { // CI: no GPU, no NCCL
            e = assertThrows(IllegalStateException.class, () -> Distributed.builder()
                    .optEnvironment(Map.of("RANK", "0", "WORLD_SIZE", "2", "NCCL_NVLS_ENABLE", "0")).init());
            assertTrue(e.getMessage().startsWith("WORLD_SIZE=2 needs NCCL on CUDA, which is not available: "),
                    e.getMessage());
            assertEquals(0, NcclProcessGroup.deviceCount());
            System.out.println("NCCL unavailable here: " + NcclProcessGroup.unavailableReason());
        }
    }

    @Test
    void deviceBuffersAreChecked() {
        NcclBuffer b = new NcclBuffer(0x1000, 10, DeviceDataType.FP16);
        assertEquals(20, b.bytes());
        assertEquals(new NcclBuffer(0x1004, 3, DeviceDataType.FP16), b.slice(2, 3));
        assertThrows(IllegalArgumentException.class, () -> b.slice(8, 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new NcclBuffer(0, 4, DeviceDataType.FP32));
        assertEquals("a device buffer of 4 elements needs a non-null pointer", e.getMessage());
        NcclBuffer empty = new NcclBuffer(0, 0, DeviceDataType.INT64); // an empty buffer may have no address
        assertEquals(0, empty.bytes());
        assertEquals(empty, empty.slice(0, 0));
        assertEquals(9, NcclLibrary.dataType(DeviceDataType.BF16));
        // JNA layouts of the NCCL structs: ncclUniqueId is 128 bytes; the ncclConfig_t 2.17 prefix is 40
        assertEquals(128, new NcclLibrary.UniqueId.ByValue().size());
        NcclLibrary.Config config = new NcclLibrary.Config();
        assertEquals(40, config.size());
        assertEquals(40L, config.size);
        assertEquals(0xcafebeef, config.magic);
        assertEquals(2, ReduceOp.MAX.ncclCode());
    }
}
