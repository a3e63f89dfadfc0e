package org.flashdjl.examples.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import org.flashdjl.examples.safetensors.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A {@code tokenizer.json} tokenizer through DJL's {@code ai.djl.huggingface:tokenizers} (the jar carries the
 * native library for linux-x86_64, so it loads offline; nothing is downloaded from a hub: the file is given).
 */
public final class HfTextTokenizer implements TextTokenizer {

    private final HuggingFaceTokenizer tokenizer;
    private final int bosId;
    private final List<Integer> eosIds;

    private HfTextTokenizer(HuggingFaceTokenizer tokenizer, int bosId, List<Integer> eosIds) {
        this.tokenizer = tokenizer;
        this.bosId = bosId;
        this.eosIds = Collections.unmodifiableList(new ArrayList<>(eosIds));
    }

    /**
     * Loads {@code tokenizer.json}.
     *
     * @param file the tokenizer file
     * @param bosId the BOS id from the model config, or -1
     * @param eosIds the EOS ids from the model config
     * @return the tokenizer
     * @throws CheckpointException naming the file when it is missing, a directory, or not a tokenizer the
     *     {@code tokenizers} library accepts
     * @throws IOException if the file cannot be read
     */
    public static HfTextTokenizer load(Path file, int bosId, List<Integer> eosIds) throws IOException {
        if (Files.isDirectory(file)) {
            throw new CheckpointException(file, null, "is a directory, not a tokenizer file");
        }
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, null, "tokenizer file not found");
        }
        HuggingFaceTokenizer t;
        try {
            t = HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(false)
                    .optTruncation(false).optPadding(false).build();
        } catch (RuntimeException e) { // the native library's parse error, e.g. "expected value at line 1 column 1"
            throw new CheckpointException(file, null, "not a valid tokenizer.json (the tokenizers library says: "
                    + e.getMessage() + ")", e);
        }
        return new HfTextTokenizer(t, bosId, eosIds);
    }

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text) {
        Encoding e = tokenizer.encode(text, false, false);
        long[] ids = e.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = (int) ids[i];
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return tokenizer.decode(l, true);
    }

    /** {@inheritDoc} */
    @Override
    public int getBosId() {
        return bosId;
    }

    /** {@inheritDoc} */
    @Override
    public List<Integer> getEosIds() {
        return eosIds;
    }

    /** {@inheritDoc} */
    @Override
    public StreamingDecoder newStreamingDecoder() {
        // Decode the whole generated prefix and emit what grew, holding back a trailing replacement character
        // (an incomplete multi-byte sequence).
        return new StreamingDecoder() {
            private final List<Integer> ids = new ArrayList<>();
            private String emitted = "";

            @Override
            public String next(int id) {
                ids.add(id);
                String text = decode(ids.stream().mapToInt(Integer::intValue).toArray());
                if (text.endsWith("\ufffd") || !text.startsWith(emitted)) {
                    return "";
                }
                String delta = text.substring(emitted.length());
                emitted = text;
                return delta;
            }

            @Override
            public String flush() {
                String text = decode(ids.stream().mapToInt(Integer::intValue).toArray());
                String delta = text.startsWith(emitted) ? text.substring(emitted.length()) : "";
                emitted = text;
                return delta;
            }
        };
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        tokenizer.close();
    }
}
