package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.flashdjl.ops.attention.AttentionSpec;
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
 * The Java layouts of every kernel parameter struct against their C headers: field names, order and kinds from the
 * declarations (a nested struct member such as {@code MaskParams mask;} is read from its own header and flattened
 * to {@code mask.field}), offsets and sizes from the {@code static_assert}s; and the packer itself.
 */
class KernelStructTest {

    private static final Path CUDA = Path.of("src/main/cuda");

    /** Checks a layout against {@code struct <name>} of a header; returns how many static_asserts were checked. */
    static int checkAgainstHeader(KernelStruct.Layout layout, Path header) throws IOException {
        String text = Files.readString(header);
        String name = layout.name();
        List<String> names = new ArrayList<>();
        List<KernelStruct.Kind> kinds = new ArrayList<>();
        declarations(name, "", names, kinds);
        assertEquals(names.size(), layout.fields().size(), name + " field count; header fields " + names);
        for (int i = 0; i < names.size(); i++) {
            KernelStruct.Layout.Field f = layout.fields().get(i);
            assertEquals(names.get(i), f.name(), name + " field " + i);
            assertEquals(kinds.get(i), f.kind(), name + "." + f.name());
        }
        Matcher off = Pattern.compile("offsetof\\(" + name + ",\\s*(\\w+)\\)\\s*==\\s*(\\d+)").matcher(text);
        int checked = 0;
        while (off.find()) {
            assertEquals(Integer.parseInt(off.group(2)), layout.offsetOf(off.group(1)), off.group(1));
            checked++;
        }
        Matcher size = Pattern.compile("sizeof\\(" + name + "\\)\\s*==\\s*(\\d+)").matcher(text);
        assertEquals(true, size.find(), "the header pins sizeof(" + name + ")");
        assertEquals(Integer.parseInt(size.group(1)), layout.size());
        return checked + 1;
    }

    // The leaf declarations of struct `name` (found in any header of the CUDA sources), nested structs expanded.
    private static void declarations(String name, String prefix, List<String> names, List<KernelStruct.Kind> kinds)
            throws IOException {
        String body = null;
        try (var files = Files.list(CUDA)) {
            for (Path h : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".h"))::iterator) {
                String text = Files.readString(h);
                int start = text.indexOf("struct " + name + " {");
                if (start >= 0) {
                    body = text.substring(text.indexOf('{', start) + 1, text.indexOf("};", start))
                            .replaceAll("//[^\n]*", "");
                }
            }
        }
        assertFalse(body == null, "struct " + name + " not found in " + CUDA);
        Matcher decl = Pattern.compile("((?:const\\s+)?\\w+\\s*\\*?)\\s*([\\w\\s,]+);").matcher(body);
        while (decl.find()) {
            String type = decl.group(1).replace("const", "").trim();
            for (String n : decl.group(2).split(",")) {
                String member = prefix + n.trim();
                KernelStruct.Kind kind = type.endsWith("*") ? KernelStruct.Kind.POINTER
                        : type.equals("int64_t") ? KernelStruct.Kind.INT64
                        : type.equals("int32_t") ? KernelStruct.Kind.INT32
                        : type.equals("float") ? KernelStruct.Kind.FLOAT : null;
                if (kind == null) {
                    declarations(type, member + ".", names, kinds); // a nested struct
                } else {
                    names.add(member);
                    kinds.add(kind);
                }
            }
        }
    }

    @Test
    void everyLayoutMatchesItsHeader() throws IOException {
        assertEquals(3, checkAgainstHeader(KernelStruct.MASK_PARAMS, CUDA.resolve("mask_params.h")));
        assertEquals(4, checkAgainstHeader(FlashAttention.LAYOUT, CUDA.resolve("flash_params.h")));
        assertEquals(240, FlashAttention.LAYOUT.size());
        assertEquals(204, FlashAttention.LAYOUT.offsetOf("mask"));
        assertEquals(224, FlashAttention.LAYOUT.field("mask.scale").offset());
        assertEquals(4, checkAgainstHeader(MergeStateKernel.LAYOUT, CUDA.resolve("merge_params.h")));
        assertEquals(176, MergeStateKernel.LAYOUT.size());
        assertEquals(4, checkAgainstHeader(PagedDecodeKernel.LAYOUT, CUDA.resolve("paged_params.h")));
        assertEquals(4, checkAgainstHeader(PagedPrefillKernel.LAYOUT, CUDA.resolve("paged_prefill_params.h")));
    }

    @Test
    void packsLittleEndianAndChecksRanges() {
        KernelStruct p = MergeStateKernel.LAYOUT.newStruct().set("v_a", 0x1122334455667788L).set("rows", 7)
                .set("s_out_head_stride", -1);
        byte[] b = p.toBytes();
        assertEquals(176, b.length);
        assertEquals((byte) 0x88, b[0]);
        assertEquals((byte) 0x11, b[7]);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(7, bb.getInt(160));
        assertEquals(-1L, bb.getLong(152));
        assertEquals(7, p.get("rows"));
        assertThrows(IllegalArgumentException.class, () -> p.set("rows", 1L << 40));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.set("nope", 1));
        assertEquals(true, e.getMessage().contains("MergeStateParams has no field 'nope'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.setFloat("rows", 1f));
        KernelStruct c = p.copy().set("rows", 9);
        assertEquals(7, p.get("rows"), "a copy is independent");
        assertEquals(9, c.get("rows"));
    }

    @Test
    void theMaskMemberComesFromTheSpecInOnePlace() {
        AttentionSpec spec = AttentionSpec.builder().optCausal(true).optWindowBounds(32, 0).optSinkTokens(4)
                .optSoftcap(30f).build();
        for (KernelStruct.Layout layout : new KernelStruct.Layout[] {FlashAttention.LAYOUT, PagedDecodeKernel.LAYOUT,
            PagedPrefillKernel.LAYOUT}) {
            KernelStruct p = layout.newStruct().setMask(spec, 64);
            ByteBuffer bb = ByteBuffer.wrap(p.toBytes()).order(ByteOrder.LITTLE_ENDIAN);
            int m = layout.offsetOf("mask");
            assertEquals(0, bb.getInt(m), layout.name()); // key_offset
            assertEquals(1, bb.getInt(m + 4), layout.name());
            assertEquals(32, bb.getInt(m + 8), layout.name());
            assertEquals(0, bb.getInt(m + 12), layout.name());
            assertEquals(4, bb.getInt(m + 16), layout.name());
            assertEquals(0.125f, bb.getFloat(m + 20), layout.name());
            assertEquals(30f, bb.getFloat(m + 24), layout.name());
            assertEquals(0, bb.getInt(m + 28), layout.name()); // query_shift
            assertTrue(p.toString().contains("mask.softcap=30.0"), p.toString());
        }
    }
}
