/**
 * Examples and the demo command line ({@link org.flashdjl.examples.FlashDjlCli}): streaming generation with a
 * LLaMA-family model on FlashDJL's attention, continuous batching, the capability report, and a DJL Serving model
 * directory; {@link org.flashdjl.examples.LoadedModel} loads a checkpoint directory (or the offline demo) with its
 * tokenizer.
 */
package org.flashdjl.examples;
