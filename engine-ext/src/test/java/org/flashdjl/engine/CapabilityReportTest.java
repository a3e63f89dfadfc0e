package org.flashdjl.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.flashdjl.ops.attention.Attention;
import org.flashdjl.ops.attention.AttentionBackends;
import org.flashdjl.ops.attention.AttentionProblem;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;
import org.flashdjl.ops.paged.PagedAttentionBackends;
import org.flashdjl.ops.paged.PagedPlan;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.Collectors;

/**
 * The one registry (ops' {@code BackendRegistry}, dense and paged) with backends dropped in as jars (this module's
 * test {@code META-INF/services} files), its {@code auto} rule, and the capability report built from it.
 */
class CapabilityReportTest {

    @Test
    void droppedInBackendsAreRegisteredAsTheObjectsThemselves() {
        List<String> dense = AttentionBackends.names();
        assertTrue(dense.containsAll(List.of("math", "online", "thirdparty", "auto")), dense.toString());
        assertEquals("auto", dense.get(dense.size() - 1));
        assertTrue(AttentionBackends.get("thirdparty") instanceof ThirdPartyBackend);
        List<String> paged = PagedAttentionBackends.names();
        assertTrue(paged.containsAll(List.of("gather", "vendor-paged", "auto")), paged.toString());
        assertTrue(PagedAttentionBackends.get("vendor-paged") instanceof VendorPagedBackend);
    }

    @Test
    void autoPicksTheHighestRankedBackendThatCanRunTheCall() {
        try (NDManager m = NDManager.newBaseManager()) {
            AttentionSpec spec = AttentionSpec.builder().optCausal(true).build();
            NDArray d3 = m.ones(new Shape(1, 2, 4, ThirdPartyBackend.HEAD_DIM));
            NDArray d4 = m.ones(new Shape(1, 2, 4, 4));
            // rank 50 > online's 10, but only for head dim 3
            assertSame(AttentionBackends.get("thirdparty"), AttentionBackends.select("auto",
                    AttentionProblem.builder(d3, d3, d3, spec).build()));
            assertSame(AttentionBackends.get("online"), AttentionBackends.select("auto",
                    AttentionProblem.builder(d4, d4, d4, spec).build()));
            long calls = ThirdPartyBackend.calls();
            Attention.forward(d3, d3, d3, spec);
            assertEquals(calls + 1, ThirdPartyBackend.calls(), "auto ran the dropped-in backend");
            // rank 1000 but unavailable: auto passes it by
            PageTable table = PageTable.fromCsr(4, new int[] {0, 1}, new int[] {0}, new int[] {3}, 1);
            try (PagedPlan plan = PagedPlan.builder(table).setQueryHeads(2).setKvHeads(2).setHeadDim(4)
                    .optDevice(m.getDevice()).build()) {
                assertEquals("gather", plan.getBackend().getName());
            }
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> PagedPlan.builder(table).setQueryHeads(2).setKvHeads(2).setHeadDim(4)
                            .optDevice(m.getDevice()).optBackend("vendor-paged").build());
            assertTrue(e.getMessage().contains("'vendor-paged' is not available: needs the vendor's driver"),
                    e.getMessage());
        }
    }

    @Test
    void checkExplainsWhatIsWrong() {
        assertEquals("online", AttentionBackends.check("online"));
        assertEquals("auto", AttentionBackends.check("auto"));
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> AttentionBackends.check("ring"));
        assertTrue(unknown.getMessage().contains("unknown attention backend 'ring'; known: ["), unknown.getMessage());
        assertTrue(unknown.getMessage().contains("online"), unknown.getMessage());
    }

    @Test
    void reportListsEveryRegisteredBackendWithItsDescriptionAndReason() {
        CapabilityReport r = CapabilityReport.probe();
        List<String> dense = r.getBackends().stream().map(CapabilityReport.BackendStatus::getName)
                .collect(Collectors.toList());
        assertEquals(AttentionBackends.all().stream().map(b -> b.getName()).collect(Collectors.toList()), dense,
                "the report's dense lines are the registry's backends");
        List<String> paged = r.getBackends(BackendKind.PAGED).stream().map(CapabilityReport.BackendStatus::getName)
                .collect(Collectors.toList());
        assertEquals(PagedAttentionBackends.all().stream().map(b -> b.getName()).collect(Collectors.toList()),
                paged);
        List<String> cp = r.getBackends(BackendKind.CONTEXT_PARALLEL).stream()
                .map(CapabilityReport.BackendStatus::getName).collect(Collectors.toList());
        assertEquals(List.of("ring", "ulysses"), cp);
        for (CapabilityReport.BackendStatus b : r.getBackends(BackendKind.CONTEXT_PARALLEL)) {
            assertFalse(b.isAvailable(), "needs a process group");
        }
        String text = r.format();
        for (String s : new String[] {"thirdparty", "a dropped-in dense backend", "vendor-paged",
            "needs the vendor's driver", "[context-parallel]", "[paged]", "gather", "auto",
            "reference: the whole [Lq, Lk] score matrix in fp32"}) {
            assertTrue(text.contains(s), s + " missing from\n" + text);
        }
    }
}
