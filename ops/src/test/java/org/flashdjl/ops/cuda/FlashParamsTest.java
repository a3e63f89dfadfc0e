package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

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

/** {@link FlashParams} against {@code flash_params.h}: field order, kinds, offsets and size. */
class FlashParamsTest {

    private static final Path HEADER = Path.of("src/main/cuda/flash_params.h");

    @Test
    void offsetsMatchTheHeadersStaticAsserts() throws IOException {
        String header = Files.readString(HEADER);
        Matcher m = Pattern.compile("offsetof\\(FlashFwdParams,\\s*(\\w+)\\)\\s*==\\s*(\\d+)").matcher(header);
        int checked = 0;
        while (m.find()) {
            assertEquals(Integer.parseInt(m.group(2)), FlashParams.field(m.group(1)).offset(), m.group(1));
            checked++;
        }
        Matcher size = Pattern.compile("sizeof\\(FlashFwdParams\\)\\s*==\\s*(\\d+)").matcher(header);
        assertEquals(true, size.find(), "the header pins sizeof(FlashFwdParams)");
        assertEquals(Integer.parseInt(size.group(1)), FlashParams.SIZE);
        assertEquals(232, FlashParams.SIZE);
        assertEquals(64, FlashParams.Field.Q_BATCH_STRIDE.offset());
        assertEquals(184, FlashParams.Field.BATCH.offset());
        assertEquals(224, FlashParams.Field.SCALE.offset());
        assertEquals(3, checked, "static_assert offsets found in the header");
    }

    @Test
    void fieldsMatchTheHeadersDeclarations() throws IOException {
        String header = Files.readString(HEADER);
        int start = header.indexOf("struct FlashFwdParams {");
        int end = header.indexOf("};", start);
        String body = header.substring(start, end).replaceAll("//[^\n]*", "");
        List<String> names = new ArrayList<>();
        List<FlashParams.Kind> kinds = new ArrayList<>();
        Matcher decl = Pattern.compile("((?:const\\s+)?[\\w]+\\s*\\*?)\\s*([\\w\\s,]+);").matcher(
                body.substring(body.indexOf('{') + 1));
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
        assertFalse(names.isEmpty());
        assertEquals(FlashParams.Field.values().length, names.size(), "field count; header fields " + names);
        for (FlashParams.Field f : FlashParams.Field.values()) {
            assertEquals(names.get(f.ordinal()), f.cName(), "field " + f.ordinal());
            assertEquals(kinds.get(f.ordinal()), f.kind(), f.cName());
        }
    }

    @Test
    void packsLittleEndian() {
        FlashParams p = new FlashParams()
                .setLong(FlashParams.Field.Q, 0x1122334455667788L)
                .setLong(FlashParams.Field.LSE_HEAD_STRIDE, -1)
                .setInt(FlashParams.Field.WINDOW_LEFT, -1)
                .setFloat(FlashParams.Field.SCALE, 0.125f)
                .setFloat(FlashParams.Field.SOFTCAP, 30f);
        byte[] b = p.toBytes();
        assertEquals(232, b.length);
        assertEquals((byte) 0x88, b[0]);
        assertEquals((byte) 0x11, b[7]);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(-1, bb.getLong(168));
        assertEquals(-1, bb.getInt(212));
        assertEquals(0.125f, bb.getFloat(224));
        assertEquals(30f, bb.getFloat(228));
        assertEquals(0.125f, p.get(FlashParams.Field.SCALE));
    }
}
