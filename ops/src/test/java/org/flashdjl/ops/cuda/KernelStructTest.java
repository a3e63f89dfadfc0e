package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Java layouts of the merge-state and paged-decode parameter structs against their C headers: field names,
 * order and kinds from the declarations, offsets and sizes from the {@code static_assert}s.
 */
class KernelStructTest {

    /** Checks a layout against {@code struct <name>} of a header; returns how many static_asserts were checked. */
    static int checkAgainstHeader(KernelStruct.Layout layout, Path header) throws IOException {
        String text = Files.readString(header);
        String name = layout.name();
        int start = text.indexOf("struct " + name + " {");
        assertFalse(start < 0, "struct " + name + " not found in " + header);
        int end = text.indexOf("};", start);
        String body = text.substring(text.indexOf('{', start) + 1, end).replaceAll("//[^\n]*", "");
        List<String> names = new ArrayList<>();
        List<FlashParams.Kind> kinds = new ArrayList<>();
        Matcher decl = Pattern.compile("((?:const\\s+)?\\w+\\s*\\*?)\\s*([\\w\\s,]+);").matcher(body);
        while (decl.find()) {
            String type = decl.group(1).replace("const", "").trim();
            FlashParams.Kind kind = type.endsWith("*") ? FlashParams.Kind.POINTER
                    : type.equals("int64_t") ? FlashParams.Kind.INT64
                    : type.equals("int32_t") ? FlashParams.Kind.INT32
                    : type.equals("float") ? FlashParams.Kind.FLOAT : null;
            for (String n : decl.group(2).split(",")) {
                names.add(n.trim());
                kinds.add(kind);
            }
        }
        assertEquals(names.size(), layout.fields().size(), name + " field count; header fields " + names);
        for (int i = 0; i < names.size(); i++) {
            KernelStruct.Layout.Field f = layout.fields().get(i);
            assertEquals(names.get(i), f.name(), name + " field " + i);
            assertEquals(kinds.get(i), f.kind(), name + "." + f.name());
        }
        Matcher off = Pattern.compile("offsetof\\(" + name + ",\\s*(\\w+)\\)\\s*==\\s*(\\d+)").matcher(text);
        int checked = 0;
        while (off.find()) {
            assertEquals(Integer.parseInt(off.group(2)), layout.field(off.group(1)).offset(), off.group(1));
            checked++;
        }
        Matcher size = Pattern.compile("sizeof\\(" + name + "\\)\\s*==\\s*(\\d+)").matcher(text);
        assertEquals(true, size.find(), "the header pins sizeof(" + name + ")");
        assertEquals(Integer.parseInt(size.group(1)), layout.size());
        return checked + 1;
    }

    @Test
    void mergeStateParamsMatchTheHeader() throws IOException {
        assertEquals(4, checkAgainstHeader(MergeStateKernel.LAYOUT, Path.of("src/main/cuda/merge_params.h")));
        assertEquals(176, MergeStateKernel.LAYOUT.size());
    }

    @Test
    void packsLittleEndianAndChecksRanges() {
        KernelStruct p = MergeStateKernel.LAYOUT.newStruct().set("v_a", 0x1122334455667788L).set("rows", 7)
                .set("s_out_head_stride", -1);
        byte[] b = p.toBytes();
        assertEquals(176, b.length);
        assertEquals((byte) 0x88, b[0]);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(7, bb.getInt(160));
        assertEquals(-1L, bb.getLong(152));
        assertEquals(7, p.get("rows"));
        assertThrows(IllegalArgumentException.class, () -> p.set("rows", 1L << 40));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.set("nope", 1));
        assertEquals(true, e.getMessage().contains("MergeStateParams has no field 'nope'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.setFloat("rows", 1f));
    }
}
