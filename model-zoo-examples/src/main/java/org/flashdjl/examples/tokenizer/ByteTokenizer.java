package org.flashdjl.examples.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;

/**
 * The byte-level tokenizer of the demo model: ids 0..255 are the UTF-8 bytes of the text, then {@link #BOS},
 * {@link #EOS} and {@link #PAD}. Needs no file, so the offline default runs with nothing downloaded.
 */
public final class ByteTokenizer implements TextTokenizer {

    /** Beginning of sequence. */
    public static final int BOS = 256;
    /** End of sequence. */
    public static final int EOS = 257;
    /** Padding. */
    public static final int PAD = 258;
    /** The vocabulary size: 256 bytes + 3 specials. */
    public static final int VOCAB_SIZE = 259;

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xff;
        }
        return ids;
    }

    /** {@inheritDoc} */
    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id >= 0 && id < 256) {
                bytes.write(id);
            }
        }
        return new String(bytes.toByteArray(), StandardCharsets.UTF_8);
    }

    /** {@inheritDoc} */
    @Override
    public int getBosId() {
        return BOS;
    }

    /** {@inheritDoc} */
    @Override
    public List<Integer> getEosIds() {
        return Collections.singletonList(EOS);
    }

    /** {@inheritDoc} */
    @Override
    public StreamingDecoder newStreamingDecoder() {
        return new StreamingDecoder() {
            private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

            @Override
            public String next(int id) {
                if (id < 0 || id >= 256) {
                    return "";
                }
                pending.write(id);
                byte[] b = pending.toByteArray();
                CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT);
                try {
                    CharBuffer cb = d.decode(ByteBuffer.wrap(b));
                    pending.reset();
                    return cb.toString();
                } catch (CharacterCodingException e) {
                    if (b.length >= 4 || !couldStart(b)) {
                        pending.reset();
                        return new String(b, StandardCharsets.UTF_8); // replacement characters
                    }
                    return "";
                }
            }

            @Override
            public String flush() {
                byte[] b = pending.toByteArray();
                pending.reset();
                return new String(b, StandardCharsets.UTF_8);
            }
        };
    }

    // Whether b can be the beginning of one UTF-8 character still incomplete.
    private static boolean couldStart(byte[] b) {
        int lead = b[0] & 0xff;
        int need = lead >= 0xf0 && lead < 0xf8 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (need == 1 || b.length >= need) {
            return false;
        }
        for (int i = 1; i < b.length; i++) {
            if ((b[i] & 0xc0) != 0x80) {
                return false;
            }
        }
        return true;
    }
}
