/**
 * Tokenizers for the examples: the byte-level {@link org.flashdjl.examples.tokenizer.ByteTokenizer} of the
 * offline demo model and {@link org.flashdjl.examples.tokenizer.HfTextTokenizer} for {@code tokenizer.json}
 * through DJL's Hugging Face tokenizers (native library shipped in its jar).
 */
package org.flashdjl.examples.tokenizer;
