package org.flashdjl.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.util.List;

class BackendsTest {

    @Test
    void registryListsEveryBuiltInNameAndDroppedInJars() {
        List<String> names = Backends.names();
        for (String n : new String[] {"math", "online", "paged", "ring", "ulysses", "auto", "thirdparty",
            "vendor-paged"}) {
            assertTrue(names.contains(n), n + " missing from " + names);
        }
        assertEquals("auto", names.get(names.size() - 1));
        assertEquals(BackendKind.PAGED, Backends.get("paged").getKind());
        assertEquals(BackendKind.CONTEXT_PARALLEL, Backends.get("ring").getKind());
        assertEquals(BackendKind.CONTEXT_PARALLEL, Backends.get("ulysses").getKind());
        assertEquals(BackendKind.DENSE, Backends.get("thirdparty").getKind());
        assertNull(Backends.get("math").unavailableReason());
        assertNotNull(Backends.get("ring").unavailableReason());
        assertTrue(Backends.denseNames().contains("thirdparty"));
    }

    @Test
    void checkDenseExplainsWhatIsWrong() {
        assertEquals("online", Backends.checkDense("online"));
        assertEquals("auto", Backends.checkDense("auto"));
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> Backends.checkDense("nope"));
        assertTrue(unknown.getMessage().contains("unknown attention backend 'nope'"), unknown.getMessage());
        assertTrue(unknown.getMessage().contains("online"), unknown.getMessage());
        IllegalArgumentException kind = assertThrows(IllegalArgumentException.class,
                () -> Backends.checkDense("ring"));
        assertTrue(kind.getMessage().contains("CONTEXT_PARALLEL"), kind.getMessage());
    }

    @Test
    void capabilityReportShowsKindsAndReasons() {
        CapabilityReport r = CapabilityReport.probe();
        String text = r.format();
        assertTrue(text.contains("paged"), text);
        assertTrue(text.contains("[context-parallel]"), text);
        assertTrue(text.contains("vendor-paged") && text.contains("needs the vendor's driver"), text);
        assertTrue(text.contains("auto"), text);
        // getBackends() keeps its meaning: what a dense sample can run.
        for (CapabilityReport.BackendStatus b : r.getBackends()) {
            assertEquals(BackendKind.DENSE, b.getKind());
        }
        assertTrue(r.getAllBackends().size() > r.getBackends().size());
    }
}
