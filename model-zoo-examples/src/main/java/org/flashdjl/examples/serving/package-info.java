/**
 * DJL Serving integration: a model directory ({@code serving.properties}, {@code config.json},
 * {@code *.safetensors}, optional {@code tokenizer.json}) that DJL's {@code Criteria} loads exactly as DJL
 * Serving does, through {@link org.flashdjl.examples.serving.LlamaBlockFactory} (weights from safetensors, no
 * DJL {@code .params} file) and {@link org.flashdjl.examples.serving.LlamaTranslatorFactory} (JSON in, JSON out).
 */
package org.flashdjl.examples.serving;
