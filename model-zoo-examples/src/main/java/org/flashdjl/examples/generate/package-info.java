/**
 * Text generation over a {@link org.flashdjl.examples.llama.LlamaModel}: streaming generation of one prompt
 * over per-layer KV caches ({@link org.flashdjl.examples.generate.Generator}) and continuous batching of many
 * prompts over a {@link org.flashdjl.engine.cache.SequenceKvStore} ({@link
 * org.flashdjl.examples.generate.BatchGenerator} for a list of prompts, {@link
 * org.flashdjl.examples.generate.RollingBatchScheduler} for requests from many threads, chunked prefill and
 * admission by free pages; one step loop for both); greedy by default, temperature / top-k / top-p sampling with
 * a seed.
 */
package org.flashdjl.examples.generate;
